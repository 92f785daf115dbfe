"""What a channel's sender is, and the outcomes it reports.

A channel package (services/senders/spec.py) names a ``ChannelSender`` subclass: its name,
title, contact key and settings model, and ``deliver``. The sender stage calls ``send``.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from msgd.envelope import (
    FAULT_CONTENT,
    FAULT_GATEWAY,
    FAULT_RECIPIENT,
    FAULT_TRANSIENT_EXHAUSTED,
    FAULT_UNKNOWN,
)
from msgd.redact import redact_text
from msgd.settings import Settings
from msgd.store.cache import ChannelConfig as ChannelConfig  # re-exported: what a sender is given
from msgd.topology import Lane
from services.senders.aio import LoopThread
from services.senders.contacts import split_words, unique
from services.senders.model import SettingsInvalid, SettingsModel

K = TypeVar("K")
R = TypeVar("R")
M = TypeVar("M", bound=SettingsModel)


class SendError(Exception):
    """Delivery failed; ``reason`` is shown to operators, in plain words, without secrets.

    ``fault`` is the failure's fault class (msgd/envelope.py ``FAULTS``: recipient, gateway,
    content, transient-exhausted, unknown), recorded with a final failure: each subclass has a
    default, and ``fault=`` names another where the raiser knows better (an invalid number is
    the recipient's, not the gateway's).

    ``code`` is the failure's stable reason code (msgd/reasons.py ``REASONS``, e.g.
    ``gateway.no_money``): each subclass has a default, ``code=`` names the finer one; the
    admin explains it in the reader's language beside ``reason``, the far side's words."""

    permanent: ClassVar[bool] = True
    fault: str = FAULT_UNKNOWN
    code: str = "unknown.failure"
    # A ``recipient`` failure's finer cause, for the feedback to billing (README "Feedback to
    # billing"): e.g. subscription-gone, bot-blocked, number-invalid; empty = the channel's default.
    cause: str = ""

    def __init__(self, reason: str, *, retry_after: float | None = None, fault: str | None = None,
                 cause: str = "", code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        if fault is not None:
            self.fault = fault
        if cause:
            self.cause = cause
        if code:
            self.code = code


class PermanentError(SendError):
    """Retrying cannot help (bad credentials, invalid number, unknown user).

    Fault class ``gateway`` unless given: most permanent failures are a setting or an account
    the operator must fix; raisers pass ``fault=`` for the recipient's, the content's or an
    unexplained refusal (``unknown``)."""

    fault = FAULT_GATEWAY
    code = "gateway.refused"


class TransientError(SendError):
    """The far side may accept later (timeout, refused connection, 5xx, 4xx SMTP, 429).

    Its ``fault`` applies when the operator's attempts run out: ``transient-exhausted`` unless
    the raiser knows whose it is then (an IP address the gateway keeps blocking: ``gateway``)."""

    permanent = False
    fault = FAULT_TRANSIENT_EXHAUSTED
    code = "transient.failure"


class MaybeSent(TransientError):
    """The far side got the request but no (readable) answer came: it may have delivered the
    message (a read timeout; the connection closed or reset after the request was written;
    an SMTP server silent after the message's final dot).

    Retrying may send it twice, so the sender stage follows the channel's ``on_timeout``
    (``retry`` | ``unknown``) rather than retrying blindly; ``dedupes`` says the far side drops a
    repeat of this message by the message id msgd sent, so a retry is safe whatever the policy."""

    code = "unknown.maybe_delivered"

    def __init__(self, reason: str, *, retry_after: float | None = None, dedupes: bool = False) -> None:
        super().__init__(reason, retry_after=retry_after)
        self.dedupes = dedupes


class InvalidRecipient(PermanentError):
    """The subscriber's contact itself is malformed (an invalid e-mail address or phone number):
    the recipient's fault. Raised before any connection and never retried."""

    fault = FAULT_RECIPIENT
    code = "recipient.invalid_contact"


class OutcomeUnknown(PermanentError):
    """Final: the message may or may not have been delivered, and it is not sent again."""

    fault = FAULT_UNKNOWN
    code = "unknown.outcome"


class ContentError(PermanentError):
    """The message itself cannot go out as it is (too many SMS parts, too large an e-mail, too
    many Telegram messages): fixed in the template or the event data, not at the gateway."""

    fault = FAULT_CONTENT
    code = "content.too_large"


@dataclass
class SendResult:
    gateway_message_id: str = ""
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outbound:
    """A rendered message ready to send (the ``outbound`` wire body, schemas/outbound.v1.json)."""

    message_id: str
    event_id: str
    event_type: str
    operator_code: str
    channel: str
    recipient: str
    body: str
    subject: str = ""
    sender: str = ""
    html: str | None = None
    attempt: int = 1
    lane: Lane = "bulk"
    template_id: int | None = None
    abonent_id: str = ""
    abonent_name: str = ""
    created_at: str = ""

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Outbound:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_wire(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["v"] = 1
        out["kind"] = "outbound"
        return out


def outbox_limit(config: ChannelConfig, name: str, default: int) -> int:
    """A whole-number limit (``max_segments``...) of a slot whose other settings may be left out
    (an outbox slot): the stored value, else ``default``."""
    value = config.params.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else default


def stored_settings(model: type[M], config: ChannelConfig, label: str) -> M:
    """``config``'s stored params and secrets parsed by the channel's settings ``model``, once per
    stored settings (kept in ``config.memo``); PermanentError naming every problem when they cannot
    be used (settings written to the store by hand, or before the model refused them). ``label``
    names the channel ("SMS")."""
    key = f"settings:{model.__qualname__}"
    found = config.memo.get(key)
    if found is None:
        try:
            found = model.parse({**config.params, **config.secrets})
        except SettingsInvalid as exc:
            raise PermanentError(f"the {label} settings cannot be used: {exc} — fix them in the web admin or the"
                                 " config file (msgd config load)") from None
        config.memo[key] = found
    assert isinstance(found, model)
    return found


class ChannelSender(ABC):
    """One channel.  One instance per sender process.

    The sender stage calls ``send_async`` on the sender's event loop (``aio``, services/senders/
    aio.py). A channel with an asyncio transport (SMS) overrides it; for the others it runs the
    blocking ``send`` on the loop's worker threads, so ``send`` must be thread-safe (keep
    per-thread connections if needed)."""

    channel: ClassVar[str]
    # What people call it ("SMS"): reasons, the admin, msgd doctor.
    title: ClassVar[str]
    # Key under ``abonent.contacts`` in the event that holds this channel's address(es).
    contact_key: ClassVar[str]
    # The channel's settings (services/senders/model.py): the only judge of what it may be given.
    settings_model: ClassVar[type[SettingsModel]] = SettingsModel

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Started on first use; its worker threads run blocking sends (MSGD_SENDER_CONCURRENCY).
        self.aio = LoopThread(f"send-{self.channel}", settings.sender_slots)

    @classmethod
    def recipients(cls, contacts: dict[str, Any]) -> list[str]:
        """Addresses for this channel from the event's contacts: a string or a list, each string
        possibly holding several (services/senders/contacts.py), repeats dropped; one message is
        sent to each."""
        value = contacts.get(cls.contact_key)
        if value in (None, ""):
            return []
        values = value if isinstance(value, list) else [value]
        found = [entry for v in values if v is not None for entry in cls.split_contact(str(v))]
        return unique(found, cls.contact_identity)

    @classmethod
    def split_contact(cls, text: str) -> list[str]:
        """The addresses in one contact string (channels override for their address format)."""
        return split_words(text)

    @classmethod
    def contact_identity(cls, entry: str) -> str:
        """Two entries with the same identity are one recipient."""
        return entry

    def settings_of(self, config: ChannelConfig) -> SettingsModel:
        """The slot's settings as the channel's model reads them (PermanentError if it cannot)."""
        return stored_settings(self.settings_model, config, self.title)

    def on_timeout(self, config: ChannelConfig) -> str:
        """What a request that may have been delivered becomes: ``unknown`` (final, not sent
        again) or ``retry`` (the settings' ``on_timeout``); PermanentError for unusable settings."""
        return str(getattr(self.settings_of(config), "on_timeout", "unknown"))

    def check_recipient(self, message: Outbound, config: ChannelConfig) -> None:  # noqa: B027 - optional hook
        """InvalidRecipient when ``message.recipient`` cannot be this channel's address; called
        before a message is written to the outbox too, so a malformed contact fails the same way
        with and without a real gateway. ``deliver`` checks again on its own."""

    def check_content(self, message: Outbound, config: ChannelConfig) -> None:  # noqa: B027 - optional hook
        """ContentError when the message cannot go out as it is through ``config`` (more SMS parts or
        Telegram messages than allowed, a text the encoding cannot write, an e-mail over its size);
        called before a message is written to the outbox, so `make run` fails it as a real send
        does before any request. ``deliver`` checks again on its own."""

    def send(self, message: Outbound, config: ChannelConfig) -> SendResult:
        """Deliver one message or raise PermanentError / TransientError. A failure's reason leaves
        here with every registered secret masked: channels word reasons from gateway answers and
        exceptions, which may quote them."""
        try:
            return self.deliver(message, config)
        except SendError as exc:
            exc.reason = redact_text(exc.reason)
            exc.args = (exc.reason,)
            raise

    async def send_async(self, message: Outbound, config: ChannelConfig) -> SendResult:
        """``send`` for the sender stage, on the sender's event loop: by default the blocking
        ``send`` on one of the loop's worker threads, with the caller's log context."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(None, context.run, self.send, message, config)

    @abstractmethod
    def deliver(self, message: Outbound, config: ChannelConfig) -> SendResult:
        """The channel's own delivery (``send`` masks secrets in its failures)."""

    def close(self) -> None:
        """Release connections and stop the event loop (subclasses call this last)."""
        self.aio.close()


class PerThread(Generic[K, R]):
    """Connections kept per worker thread and key (connection reuse without sharing
    a non-thread-safe client), all closed together when the sender stops."""

    def __init__(self, close: Callable[[R], None]) -> None:
        self._close = close
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[R] = []

    def _mine(self) -> dict[K, R]:
        mine: dict[K, R] | None = getattr(self._local, "items", None)
        if mine is None:
            mine = self._local.items = {}
        return mine

    def get(self, key: K) -> R | None:
        return self._mine().get(key)

    def put(self, key: K, item: R) -> R:
        self._mine()[key] = item
        with self._lock:
            self._all.append(item)
        return item

    def drop(self, key: K) -> None:
        item = self._mine().pop(key, None)
        if item is not None:
            with self._lock:
                self._all = [i for i in self._all if i is not item]
            self._close(item)

    def __len__(self) -> int:
        """How many are open, across all threads."""
        with self._lock:
            return len(self._all)

    def close_all(self) -> None:
        with self._lock:
            items, self._all = self._all, []
        for item in items:
            self._close(item)
        self._local = threading.local()
