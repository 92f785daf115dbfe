"""A channel from outside msgd (tests/test_channel_plugins.py): registered by its entry point only."""
