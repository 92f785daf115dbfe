"""Who may do what: API tokens with scopes, and the operators a staff member works for.

API tokens: only a SHA-256 hash of the key is stored; the key is shown once, at creation.
Each token has scopes (``ingest``: publish events and manual sends, as billing does;
``read``: the message log; ``resend``: send failed messages again) and, optionally,
operators it is limited to (none = every operator).

Staff: ``StaffProfile.operators`` limits a user to some operators (the original's
branches and agents; none = every operator). ``StaffTools`` only carries the permissions
of the admin's own pages (msgd/web/access.py names them); it has no table.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    prefix = models.CharField(_("prefix"), max_length=8,
                              help_text=_("The first characters of the key, to tell tokens apart."))
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked = models.BooleanField(_("revoked"), default=False)
    ingest = models.BooleanField(
        _("may publish"), default=True,
        help_text=_("Publish billing events and manual sends (what billing needs)."))
    read = models.BooleanField(_("may read the log"), default=True,
                               help_text=_("Read the message log."))
    resend = models.BooleanField(_("may resend"), default=False,
                                 help_text=_("Send failed messages again."))
    operators = models.ManyToManyField(
        "msgd.Operator", blank=True, related_name="api_tokens", verbose_name=_("operators"),
        help_text=_("Only these operators' events and messages; none chosen means every operator."))

    class Meta:
        ordering = ["name"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scopes(self) -> list[str]:
        """The scope names this token has, in a fixed order (``ingest``, ``read``, ``resend``)."""
        return [s for s in ("ingest", "read", "resend") if getattr(self, s)]

    def operator_codes(self) -> set[str] | None:
        """The operator codes this token is limited to; None when it serves every operator."""
        codes = set(self.operators.values_list("code", flat=True))
        return codes or None

    @classmethod
    def create(cls, name: str, *, scopes: Iterable[str] = ("ingest", "read"),
               operators: Iterable[str] = ()) -> tuple[ApiToken, str]:
        """A new token and its key (the key is not stored: print it once). ``scopes``: any of
        ``ingest``, ``read``, ``resend``; ``operators``: codes of the operators it is limited to
        (ValueError naming an unknown scope or operator)."""
        from msgd.store.models import Operator

        chosen = set(scopes)
        unknown = chosen - {"ingest", "read", "resend"}
        if unknown:
            raise ValueError(f"unknown scope {sorted(unknown)[0]!r}: use ingest, read or resend")
        codes = list(dict.fromkeys(operators))
        found = list(Operator.objects.filter(code__in=codes))
        missing = set(codes) - {o.code for o in found}
        if missing:
            raise ValueError(f"no operator with code {sorted(missing)[0]!r}")
        key = secrets.token_urlsafe(32)
        token = cls.objects.create(name=name, prefix=key[:8], key_hash=hash_key(key),
                                   ingest="ingest" in chosen, read="read" in chosen, resend="resend" in chosen)
        token.operators.set(found)
        return token, key

    @classmethod
    def authenticate(cls, key: str) -> ApiToken | None:
        if not key:
            return None
        return cls.objects.filter(key_hash=hash_key(key), revoked=False).first()


class StaffProfile(models.Model):
    """The operators one staff member works for (none = every operator)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="msgd_profile",
                                verbose_name=_("user"))
    operators = models.ManyToManyField(
        "msgd.Operator", blank=True, related_name="staff", verbose_name=_("operators"),
        help_text=_("This person sees and sends only for these operators; none chosen means every operator."))

    class Meta:
        verbose_name = _("operator scope")
        verbose_name_plural = _("operator scope")

    def __str__(self) -> str:
        return str(self.user)


class StaffTools(models.Model):
    """Holds the permissions of the admin's own pages (no table)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("send_test_message", _("Can send a test message")),
            ("manual_send", _("Can send a message to a subscriber by hand")),
            ("resend_message", _("Can send failed messages again")),
            ("view_parking", _("Can see the parking queue with the parked messages")),
            ("replay_parking", _("Can send parked messages back to their queues")),
        ]


class DlrKey(models.Model):
    """The secret of one channel settings slot's delivery-report URL
    (``/api/v1/dlr/<slot id>/<secret>``): only its SHA-256 is stored; the URL is shown once, when
    it is made (``msgd dlr url``, or the admin's action), and made anew to rotate it."""

    settings = models.OneToOneField("msgd.ChannelSettings", on_delete=models.CASCADE, related_name="dlr_key",
                                    verbose_name=_("channel settings slot"))
    prefix = models.CharField(_("prefix"), max_length=8,
                              help_text=_("The first characters of the secret, to tell them apart."))
    key_hash = models.CharField(_("key hash"), max_length=64)
    created_at = models.DateTimeField(_("made"), auto_now=True)

    class Meta:
        verbose_name = _("delivery report secret")
        verbose_name_plural = _("delivery report secrets")

    def __str__(self) -> str:
        return f"{self.settings} ({self.prefix}…)"

    @classmethod
    def rotate(cls, settings_id: int) -> str:
        """A new secret for the slot (the old one stops working at once); returns the secret,
        which is not stored. LookupError when there is no such slot."""
        from msgd.store.models import ChannelSettings

        slot = ChannelSettings.objects.filter(id=settings_id).first()
        if slot is None:
            raise LookupError(f"no channel settings with id {settings_id}")
        secret = secrets.token_urlsafe(32)
        cls.objects.update_or_create(settings=slot, defaults={"prefix": secret[:8], "key_hash": hash_key(secret)})
        return secret

    @classmethod
    def check(cls, settings_id: int, secret: str) -> bool:
        """True when ``secret`` is the slot's current one (compared by hash, in constant time)."""
        import hmac

        row = cls.objects.filter(settings_id=settings_id).only("key_hash").first()
        return row is not None and bool(secret) and hmac.compare_digest(row.key_hash, hash_key(secret))
