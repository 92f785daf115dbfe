"""msgd pipeline stages: router, renderer, senders (one module per channel), recorder."""
