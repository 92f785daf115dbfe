"""Store models.  Names follow the original manual's concepts (see README)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from msgd.envelope import FAULTS

CONTRACT_TYPES = [("individual", "individual"), ("legal", "legal entity")]
FAULT_CHOICES = [(f, f) for f in FAULTS]

# Whether a template's text can render is the renderer's to say (a stage above the store): the
# shell installs its check (msgd/web/apps.py), so the store imports nothing from the services.
_template_check: list[Callable[[Template], str | None]] = []


def set_template_check(check: Callable[[Template], str | None]) -> None:
    """Install what ``Template.clean`` asks: why a template cannot render (None = it can)."""
    _template_check[:] = [check]


class Operator(models.Model):
    """A telecom operator (branch, agent) the billing serves; events name it by ``code``."""

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    email = models.CharField("sender e-mail", max_length=254, blank=True, default="")
    timezone = models.CharField(max_length=64, default="Europe/Moscow")
    quiet_start = models.TimeField("quiet hours start", null=True, blank=True)
    quiet_end = models.TimeField("quiet hours end", null=True, blank=True)
    attempts = models.PositiveSmallIntegerField("send attempts", default=3)
    default_subject = models.CharField("default subject/header", max_length=200, blank=True, default="")
    warn_days = models.PositiveSmallIntegerField("warn N days before blocking", null=True, blank=True)
    feedback_messages = models.BooleanField(
        _("final states to billing"), default=False,
        help_text=_("Also publish every message's final state (message.delivered, message.undelivered,"
                    " message.failed) on the msgd.feedback exchange, for billing's own history."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ChannelSettings(models.Model):
    """How one operator sends on one channel.  ``params`` is channel-specific
    (see each sender module); ``secrets`` holds passwords, keys and tokens and is
    never logged or shown.  ``outbox`` writes messages to files instead of sending."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="channels")
    channel = models.CharField(max_length=32)
    position = models.PositiveSmallIntegerField(default=1, help_text="1 = main gateway, 2 = fallback")
    enabled = models.BooleanField(default=True)
    outbox = models.BooleanField(default=False)
    params = models.JSONField(default=dict, blank=True)
    secrets = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "channel settings"
        ordering = ["operator", "channel", "position"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "channel", "position"], name="one_setting_per_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.operator.code}/{self.channel}#{self.position}"


class Template(models.Model):
    """A message template, as in the original: owner none = every operator."""

    owner = models.ForeignKey(
        Operator, null=True, blank=True, on_delete=models.CASCADE, related_name="templates"
    )
    name = models.CharField(max_length=200, blank=True, default="")
    event_type = models.CharField(max_length=64, db_index=True)
    channel = models.CharField(max_length=32, null=True, blank=True, help_text="empty = every channel")
    subject = models.TextField("header/subject", blank=True, default="")
    body = models.TextField()
    enabled = models.BooleanField("send message", default=True)
    every_day = models.BooleanField("send every day", default=False)
    status_filter = models.JSONField(default=list, blank=True, help_text="subscriber statuses; empty = any")
    contract_type = models.CharField(max_length=16, null=True, blank=True, choices=CONTRACT_TYPES)
    use_django = models.BooleanField("use Django templating", default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["event_type", "id"]

    def clean(self) -> None:
        """A template that cannot render at all is refused when saved (admin forms call this)."""
        from django.core.exceptions import ValidationError

        for check in _template_check:
            problem = check(self)
            if problem:
                raise ValidationError({"body": problem})

    def __str__(self) -> str:
        owner = self.owner.code if self.owner_id and self.owner else "all"
        return self.name or f"{self.event_type}/{self.channel or 'any'}/{owner}"


class Message(models.Model):
    """The message log: one row per message (or per event that produced none)."""

    id = models.UUIDField(primary_key=True)
    event_id = models.CharField(max_length=128, db_index=True)
    event_type = models.CharField(max_length=64, blank=True, default="")
    operator_code = models.CharField(max_length=64, blank=True, default="", db_index=True)
    abonent_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    abonent_name = models.CharField(max_length=300, blank=True, default="")
    template = models.ForeignKey(Template, null=True, blank=True, on_delete=models.SET_NULL)
    channel = models.CharField(max_length=32, blank=True, default="", db_index=True)
    recipient = models.CharField(max_length=500, blank=True, default="", db_index=True)
    sender = models.CharField(max_length=254, blank=True, default="")
    subject = models.TextField(blank=True, default="")
    body = models.TextField(blank=True, default="")
    html = models.TextField(_("HTML part"), blank=True, default="", db_default="")
    lane = models.CharField(max_length=8, blank=True, default="")
    state = models.CharField(max_length=16, db_index=True)
    reason = models.TextField(blank=True, default="")
    fault = models.CharField(
        "fault class", max_length=24, blank=True, default="", db_index=True, choices=FAULT_CHOICES,
        help_text="whose move it is after a failure: recipient, gateway, content, transient-exhausted, unknown",
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    gateway_message_id = models.CharField(max_length=200, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # The channel settings slot (ChannelSettings.id) that sent it: a delivery report names the slot
    # (its callback URL, or the slot the dlr stage asked), and gateway ids are unique per account.
    settings_id = models.PositiveIntegerField(null=True, blank=True)
    dlr_at = models.DateTimeField(
        _("delivery reported at"), null=True, blank=True,
        help_text=_("When the gateway's delivery report said delivered or undelivered (its own time when it"
                    " gives one)."))
    resend_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends",
        verbose_name=_("resend of"), help_text=_("The message this one sends again."))

    class Meta:
        ordering = ["-created_at"]
        # An audit trail: rows are only read here; `msgd purge` alone removes old ones.
        default_permissions = ("view",)
        indexes = [
            # Matching a delivery report: the gateway's id within the slot that sent the message.
            models.Index(fields=["gateway_message_id", "settings_id"], name="msgd_message_gateway_id"),
            # The dlr stage's look for sent messages of a polled slot.
            models.Index(fields=["settings_id", "state", "finished_at"], name="msgd_message_dlr_poll"),
        ]

    def __str__(self) -> str:
        from msgd.logview import shown_recipient  # a push subscription's keys are not shown

        return f"{self.event_type} {self.channel} -> {shown_recipient(self.channel, self.recipient)}: {self.state}"


class Attempt(models.Model):
    """One try at delivery (or one delay): the log shows every attempt."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="history")
    number = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=16)
    reason = models.TextField(blank=True, default="")
    at = models.DateTimeField()
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        default_permissions = ("view",)
        constraints = [
            models.UniqueConstraint(fields=["message", "number", "state"], name="one_row_per_attempt_state"),
        ]


class Claim(models.Model):
    """The atomic per-message claim that stops a message being sent twice.

    ``state``: ``sending`` while a sender works on attempt ``attempt``;
    ``retry`` when that attempt failed transiently and the next is scheduled;
    ``done`` with the final ``outcome``.
    """

    message_id = models.UUIDField(primary_key=True)
    state = models.CharField(max_length=8)
    attempt = models.PositiveSmallIntegerField()
    owner = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    gateway_message_id = models.CharField(max_length=200, blank=True, default="")
    fault = models.CharField(max_length=24, blank=True, default="")
    updated_at = models.DateTimeField()

    def age(self, now: dt.datetime) -> float:
        return float((now - self.updated_at).total_seconds())


class PendingReport(models.Model):
    """A delivery report that matched no ``sent`` message yet: it came before the sender's report
    (fast gateways answer within milliseconds), or names an id msgd never sent. The recorder applies
    it when the message's row appears, and drops it after ``MSGD_DLR_PENDING_HOURS``."""

    settings_id = models.PositiveIntegerField(null=True, blank=True)
    operator_code = models.CharField(max_length=64, blank=True, default="")
    gateway_message_id = models.CharField(max_length=200, db_index=True)
    state = models.CharField(max_length=16)
    report = models.JSONField(default=dict)
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["settings_id", "gateway_message_id", "state"],
                                    name="one_pending_report_per_state"),
        ]


class DlrPoll(models.Model):
    """The dlr stage's schedule for one ``sent`` message of a slot that is asked for its reports:
    ``polls`` asked so far, ``next_at`` when to ask again, ``owner`` the poller holding it until
    ``next_at`` (several pollers share the table, each takes rows with a compare-and-swap)."""

    message_id = models.UUIDField(primary_key=True)
    settings_id = models.PositiveIntegerField()
    gateway_message_id = models.CharField(max_length=200)
    recipient = models.CharField(max_length=500, blank=True, default="")
    sent_at = models.DateTimeField()
    polls = models.PositiveIntegerField(default=0)
    next_at = models.DateTimeField(db_index=True)
    owner = models.CharField(max_length=64, blank=True, default="")
    done = models.BooleanField(default=False)

    class Meta:
        default_permissions = ()


class Finding(models.Model):
    """A dead contact msgd told billing about (``msgd.feedback``), once per operator, channel,
    contact and cause: ``key`` is their SHA-256. ``message_id`` is the message that found it: a
    report of that message that comes again (a redelivered batch) publishes it again, with the
    same ``finding_id``, so a lost publish is not lost."""

    key = models.CharField(max_length=64, primary_key=True)
    message_id = models.UUIDField()
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        default_permissions = ()


class GatewayAccount(models.Model):
    """What msgd last learned about an SMS gateway account, one row per channel slot
    (``settings_id`` = ChannelSettings.id): the balance from the gateway's account query (the dlr
    stage, every ``MSGD_BALANCE_POLL_MINUTES``) or from a reply that carries it, and when a reply
    or query last said the money ran out (``empty_at``) or showed the account working
    (``working_at``: an accepted message, a positive balance). The account is empty while
    ``empty_at`` is the later of the two. ``problem``/``words``: the last query's refusal
    (``credentials``...), "" when it answered. ``polled_at``: the last query (several pollers
    share the table; each takes a slot with a compare-and-swap on it). Read by the admin's channel
    list and the ``msgd_gateway_*`` metrics."""

    settings_id = models.PositiveIntegerField(primary_key=True)
    balance = models.FloatField(null=True, blank=True)
    unit = models.CharField(max_length=16, blank=True, default="")
    balance_at = models.DateTimeField(null=True, blank=True)
    empty_at = models.DateTimeField(null=True, blank=True)
    working_at = models.DateTimeField(null=True, blank=True)
    problem = models.CharField(max_length=32, blank=True, default="")
    words = models.CharField(max_length=300, blank=True, default="")
    polled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()

    @property
    def empty(self) -> bool:
        """A reply or query said the money ran out, and nothing since showed the account working."""
        return self.empty_at is not None and (self.working_at is None or self.empty_at >= self.working_at)


class Revision(models.Model):
    """A counter bumped on every configuration change, so caches reload without a restart."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    value = models.BigIntegerField(default=0)

    @classmethod
    def current(cls) -> int:
        row = cls.objects.filter(id=1).values_list("value", flat=True).first()
        return int(row or 0)


def snapshot(obj: models.Model, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.name: getattr(obj, f.attname) for f in obj._meta.concrete_fields if f.name not in exclude}
