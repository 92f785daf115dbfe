"""API tokens: only a SHA-256 hash of the key is stored; the key is shown once, at creation."""

from __future__ import annotations

import hashlib
import secrets

from django.db import models


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=8, help_text="first characters of the key, to tell tokens apart")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def create(cls, name: str) -> tuple[ApiToken, str]:
        """A new token and its key (the key is not stored: print it once)."""
        key = secrets.token_urlsafe(32)
        token = cls.objects.create(name=name, prefix=key[:8], key_hash=hash_key(key))
        return token, key

    @classmethod
    def authenticate(cls, key: str) -> ApiToken | None:
        if not key:
            return None
        return cls.objects.filter(key_hash=hash_key(key), revoked=False).first()
