"""The email channel: settings, sending and everything else it needs, in one package."""
