"""Channel senders: one package per channel, registered through entry points (registry.py)."""
