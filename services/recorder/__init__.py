"""Recorder: status reports -> the message log in the store."""
