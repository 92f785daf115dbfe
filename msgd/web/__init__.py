"""The web side of msgd: HTTP API (token auth) and the Django admin for operator staff."""
