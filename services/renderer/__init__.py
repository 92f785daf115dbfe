"""Renderer: fill templates (standard %-style or Django) and address messages."""
