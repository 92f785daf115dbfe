"""The telegram channel: settings, sending and everything else it needs, in one package."""
