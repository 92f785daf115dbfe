"""The outbox: messages written to files instead of being sent (services/senders/outbox/writer.py)."""
