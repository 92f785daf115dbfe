"""Store models.  Names follow the original manual's concepts (see README)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from msgd.envelope import ALL_STATES, FAULTS
from msgd.reasons import FAULT_HELP, FAULT_LABELS, STATE_LABELS

CONTRACT_TYPES = [("individual", _("individual")), ("legal", _("legal entity"))]
FAULT_CHOICES = [(f, FAULT_LABELS[f]) for f in FAULTS]
STATE_CHOICES = [(s, STATE_LABELS[s]) for s in ALL_STATES]

# Whether a template's text can render is the renderer's to say (a stage above the store): the
# shell installs its check (msgd/web/apps.py), so the store imports nothing from the services.
_template_check: list[Callable[[Template], str | None]] = []


def set_template_check(check: Callable[[Template], str | None]) -> None:
    """Install what ``Template.clean`` asks: why a template cannot render (None = it can)."""
    _template_check[:] = [check]


class Operator(models.Model):
    """A telecom operator (branch, agent) the billing serves; events name it by ``code``."""

    code = models.CharField(_("code"), max_length=64, unique=True,
                            help_text=_("How billing's events name this operator (operator.code)."))
    name = models.CharField(_("name"), max_length=200)
    email = models.CharField(_("sender e-mail"), max_length=254, blank=True, default="",
                             help_text=_("The From address of this operator's e-mails."))
    timezone = models.CharField(_("time zone"), max_length=64, default="Europe/Moscow",
                                help_text=_("The zone of the quiet hours, e.g. Europe/Moscow."))
    quiet_start = models.TimeField(_("quiet hours start"), null=True, blank=True,
                                   help_text=_("Messages are not sent from this time (SMS and e-mail alike)."))
    quiet_end = models.TimeField(_("quiet hours end"), null=True, blank=True,
                                 help_text=_("Messages held in the quiet hours go out at this time."))
    attempts = models.PositiveSmallIntegerField(
        _("send attempts"), default=3,
        help_text=_("How many times a message is tried when the gateway does not answer or has a temporary"
                    " problem."))
    default_subject = models.CharField(
        _("default subject/header"), max_length=200, blank=True, default="",
        help_text=_("The e-mail subject used when neither the template nor the send form gives one."))
    warn_days = models.PositiveSmallIntegerField(
        _("warn N days before blocking"), null=True, blank=True,
        help_text=_("For the template “Warning N days before blocking”."))
    feedback_messages = models.BooleanField(
        _("final states to billing"), default=False,
        help_text=_("Also publish every message's final state (message.delivered, message.undelivered,"
                    " message.failed) on the msgd.feedback exchange, for billing's own history."))
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("operator")
        verbose_name_plural = _("operators")

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ChannelSettings(models.Model):
    """How one operator sends on one channel.  ``params`` is channel-specific
    (see each sender module); ``secrets`` holds passwords, keys and tokens and is
    never logged or shown.  ``outbox`` writes messages to files instead of sending."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="channels",
                                 verbose_name=pgettext_lazy("channel settings", "operator"))
    channel = models.CharField(pgettext_lazy("channel settings", "channel"), max_length=32)
    position = models.PositiveSmallIntegerField(pgettext_lazy("channel settings", "position"), default=1,
                                                help_text=_("1 = main gateway, 2 = fallback"))
    enabled = models.BooleanField(pgettext_lazy("channel settings", "enabled"), default=True)
    outbox = models.BooleanField(pgettext_lazy("channel settings", "outbox"), default=False)
    params = models.JSONField(pgettext_lazy("channel settings", "settings"), default=dict, blank=True)
    secrets = models.JSONField(pgettext_lazy("channel settings", "secrets"), default=dict, blank=True)
    updated_at = models.DateTimeField(pgettext_lazy("channel settings", "updated at"), auto_now=True)

    class Meta:
        verbose_name = _("channel settings")
        verbose_name_plural = _("channel settings")
        ordering = ["operator", "channel", "position"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "channel", "position"], name="one_setting_per_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.operator.code}/{self.channel}#{self.position}"


class Template(models.Model):
    """A message template, as in the original: owner none = every operator."""

    owner = models.ForeignKey(
        Operator, null=True, blank=True, on_delete=models.CASCADE, related_name="templates",
        verbose_name=_("belongs to operator"),
        help_text=_("Empty: a template for every operator. It cannot be changed later: make a new template."),
    )
    name = models.CharField(_("name"), max_length=200, blank=True, default="")
    event_type = models.CharField(_("event type"), max_length=64, db_index=True)
    channel = models.CharField(pgettext_lazy("template", "channel"), max_length=32, null=True, blank=True,
                               help_text=_("empty = every channel"))
    subject = models.TextField(_("header/subject"), blank=True, default="",
                               help_text=_("The e-mail subject or the SMS header."))
    body = models.TextField(_("template text"), help_text=_("The text that is sent."))
    enabled = models.BooleanField(_("send message"), default=True)
    every_day = models.BooleanField(
        _("send every day"), default=False,
        help_text=_("Only for “Warning N days before blocking”: also every day until the block."))
    status_filter = models.JSONField(_("subscriber status"), default=list, blank=True,
                                     help_text=_("subscriber statuses; empty = any"))
    contract_type = models.CharField(_("contract type"), max_length=16, null=True, blank=True,
                                     choices=CONTRACT_TYPES)
    use_django = models.BooleanField(_("use Django templating"), default=False)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        ordering = ["event_type", "id"]
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")

    def clean(self) -> None:
        """A template that cannot render at all is refused when saved (admin forms call this)."""
        from django.core.exceptions import ValidationError

        from msgd.problem_words import shown_problem

        for check in _template_check:
            problem = check(self)
            if problem:
                raise ValidationError({"body": shown_problem(problem)})  # the reader's language

    def __str__(self) -> str:
        owner = self.owner.code if self.owner_id and self.owner else "all"
        return self.name or f"{self.event_type}/{self.channel or 'any'}/{owner}"


class Message(models.Model):
    """The message log: one row per message (or per event that produced none)."""

    id = models.UUIDField(_("id"), primary_key=True)
    event_id = models.CharField(_("event id"), max_length=128)
    # Short names in context "message log": its columns fit a 1366 px screen in Russian too.
    event_type = models.CharField(pgettext_lazy("message log", "event type"), max_length=64, blank=True, default="")
    operator_code = models.CharField(pgettext_lazy("message log", "operator"), max_length=64, blank=True, default="",)
    abonent_id = models.CharField(pgettext_lazy("message log", "subscriber id"), max_length=64, blank=True, default="",)
    abonent_name = models.CharField(_("subscriber name"), max_length=300, blank=True, default="")
    template = models.ForeignKey(Template, null=True, blank=True, on_delete=models.SET_NULL,
                                 verbose_name=_("template"))
    channel = models.CharField(pgettext_lazy("message log", "channel"), max_length=32, blank=True, default="",)
    recipient = models.CharField(_("recipient"), max_length=500, blank=True, default="")
    sender = models.CharField(_("sender"), max_length=254, blank=True, default="")
    subject = models.TextField(_("subject"), blank=True, default="")
    body = models.TextField(_("text"), blank=True, default="")
    html = models.TextField(_("HTML part"), blank=True, default="", db_default="")
    lane = models.CharField(_("lane"), max_length=8, blank=True, default="",
                            help_text=_("tx: one subscriber's message (a password, a test) before the bulk"
                                        " ones; bulk: the rest"))
    state = models.CharField(_("state"), max_length=16, choices=STATE_CHOICES)
    reason = models.TextField(_("reason"), blank=True, default="")
    fault = models.CharField(
        _("fault class"), max_length=24, blank=True, default="", choices=FAULT_CHOICES,
        help_text=FAULT_HELP,
    )
    reason_code = models.CharField(
        _("reason code"), max_length=48, blank=True, default="", db_default="",
        help_text=_("A failure's stable code (msgd/reasons.py), explained in the reader's language; the reason"
                    " beside it is in the far side's own words."))
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    gateway_message_id = models.CharField(_("gateway message id"), max_length=200, blank=True, default="")
    details = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), db_index=True)
    updated_at = models.DateTimeField(_("changed"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
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
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        # An audit trail: rows are only read here; `msgd purge` alone removes old ones.
        default_permissions = ("view",)
        # Plain B-tree indexes, not db_index=True: on PostgreSQL that adds a second, LIKE-prefix
        # index per text column, which nothing queries (the admin's search is a substring match)
        # and every change of a row had to update (the log is written twice per message).
        indexes = [
            *(models.Index(fields=[name], name=f"msgd_message_{name}") for name in (
                "event_id", "operator_code", "abonent_id", "channel", "recipient", "state", "fault", "reason_code")),
            # Matching a delivery report: the gateway's id within the slot that sent the message.
            models.Index(fields=["gateway_message_id", "settings_id"], name="msgd_message_gateway_id"),
            # The dlr stage's look for sent messages of a polled slot.
            models.Index(fields=["settings_id", "state", "finished_at"], name="msgd_message_dlr_poll"),
        ]

    def __str__(self) -> str:
        """``low_balance · sms → +79121234567 (failed)``, the state in the reader's language (the
        admin's page title)."""
        from msgd.logview import shown_recipient  # a push subscription's keys are not shown

        to = shown_recipient(self.channel, self.recipient) or "-"
        return f"{self.event_type or '-'} · {self.channel or '-'} → {to} ({self.get_state_display()})"


class Attempt(models.Model):
    """One try at delivery (or one delay): the log shows every attempt."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="history",
                                verbose_name=_("message"))
    number = models.PositiveSmallIntegerField(_("attempt"))
    state = models.CharField(_("state"), max_length=16, choices=STATE_CHOICES)
    reason = models.TextField(_("reason"), blank=True, default="")
    reason_code = models.CharField(_("reason code"), max_length=48, blank=True, default="", db_default="")
    at = models.DateTimeField(_("at"))
    seconds = models.FloatField(_("seconds"), null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("attempt")
        verbose_name_plural = _("attempts")
        default_permissions = ("view",)
        constraints = [
            models.UniqueConstraint(fields=["message", "number", "state"], name="one_row_per_attempt_state"),
        ]

    def __str__(self) -> str:
        """``attempt 2: failed`` in the reader's language."""
        return f"{self._meta.verbose_name} {self.number}: {self.get_state_display()}"


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
    reason_code = models.CharField(max_length=48, blank=True, default="", db_default="")
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
