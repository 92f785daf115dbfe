"""The file's operators and templates as typed models (pydantic), checked as the store and the
stages will use them. Channel settings are each channel's own model (msgd/config/channels.py)."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from services.senders.email.address import sender_problem
from services.senders.model import Whole, no_bool
from services.senders.registry import (
    known_channels,
    legacy_channels,
    live_channels,
    normalize_channel,
)

FORMAT_VERSION = 1
EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
OPERATOR_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TIME_RE = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?$")
ATTEMPTS_MAX = 20
WARN_DAYS_MAX = 365


def known_zone(value: str) -> bool:
    """Whether ``value`` is an IANA time zone name this machine knows (``Europe/Moscow``)."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


class Entry(BaseModel):
    """Strict about keys, lenient about how YAML writes a value (numbers as text)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True,
                              hide_input_in_errors=True)


def _time(value: Any) -> Any:
    if isinstance(value, dt.time):  # a mapping built in Python (the admin)
        return value
    if not isinstance(value, str):  # pydantic would read 8 as 8 seconds after midnight, in UTC
        raise ValueError(f'{value} is not a time "HH:MM" or "HH:MM:SS": write it in quotes, e.g. "08:00"')
    match = TIME_RE.match(value.strip())
    if not match:
        raise ValueError(f'{value!r} is not a time "HH:MM" or "HH:MM:SS"')
    return dt.time(int(match[1]), int(match[2]), int(match[3] or 0))


Time = Annotated[dt.time, BeforeValidator(_time),
                 WithJsonSchema({"type": "string", "pattern": TIME_RE.pattern, "examples": ["22:00", "08:00:30"]})]


class QuietHours(Entry):
    """Nothing is sent from ``start`` to ``end`` (the operator's local time; may cross midnight)."""

    start: Time = Field(title="Начало тихого часа", description='"HH:MM" or "HH:MM:SS"')
    end: Time = Field(title="Окончание тихого часа", description='"HH:MM" or "HH:MM:SS", exclusive')

    @model_validator(mode="after")
    def _not_equal(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are equal (remove quiet_hours for none)")
        return self


class OperatorEntry(Entry):
    """A telecom operator (branch, agent) the billing serves; events name it by ``code``."""

    code: str = Field(max_length=64, title="Код", description="what events call the operator (event.operator.code)")
    name: str = Field(min_length=1, max_length=200, title="Название", description="shown as %(operator_name)s")
    email: str = Field("", max_length=254, title="E-mail отправителя",
                       description='sender of system e-mails ("" = root@<MSGD_DOMAIN>)')
    timezone: str = Field("Europe/Moscow", max_length=64, title="Часовой пояс",
                          description="an IANA zone name; quiet hours are in it")
    quiet_hours: QuietHours | None = Field(None, title="Тихий час", description="omit or null = none")
    attempts: Whole = Field(3, ge=1, le=ATTEMPTS_MAX, title="Количество попыток отправки",
                            description="send attempts when the far side does not answer")
    default_subject: str = Field("", max_length=200, title="Заголовок сообщения",
                                 description="subject when the template has none")
    warn_days: Annotated[int, Ge(0), Le(WARN_DAYS_MAX), BeforeValidator(no_bool)] | None = Field(None, title="Предупреждать о блокировке за n дней",
                                    description="days_before_block: warn this many days ahead; null = off")
    feedback_messages: bool = Field(False, title="Final states to billing",
                                    description="also publish every message's final state (message.delivered,"
                                                " message.undelivered, message.failed) on msgd.feedback")
    channels: dict[str, Any] | None = Field(
        None, title="Каналы",
        description="the operator's COMPLETE channel list: channel -> settings, or a list of them (main"
                    " gateway, fallbacks); a slot not listed is deleted; omit the key to leave them alone",
    )

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not OPERATOR_CODE_RE.match(value):
            raise ValueError(f"{value!r} must be letters, digits, '_', '.', '-' (no spaces)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        problem = sender_problem(value) if value else None  # the e-mail sender's own check
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if not known_zone(value):
            raise ValueError(f"unknown time zone {value!r} (use a name like Europe/Moscow)")
        return value

    def store_fields(self) -> dict[str, Any]:
        """The Operator row's fields (quiet hours as two columns)."""
        quiet = self.quiet_hours
        return {"name": self.name, "email": self.email, "timezone": self.timezone,
                "default_subject": self.default_subject, "attempts": self.attempts, "warn_days": self.warn_days,
                "feedback_messages": self.feedback_messages,
                "quiet_start": quiet.start if quiet else None, "quiet_end": quiet.end if quiet else None}


def _statuses(value: Any) -> Any:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, list) or not all(isinstance(s, str | int) and not isinstance(s, bool) for s in value):
        raise ValueError("must be a list of subscriber statuses ([] = any)")
    return list(dict.fromkeys(str(s) for s in value))


def _channel(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be a channel name or null, got {value!r}")
    channel = normalize_channel(value)
    if channel is not None and channel not in known_channels():
        raise ValueError(f"unknown channel {value!r} (known: {', '.join(known_channels())}; null = every channel)")
    return channel


class TemplateEntry(Entry):
    """A message template, as in the original: owner null = every operator."""

    owner: str | None = Field(None, title="Владелец", description="null = every operator, or an operator code"
                                                                 " (cannot be changed: a new owner makes a new template)")
    name: str = Field("", max_length=200, title="Название",
                      description='keeps the template matched; without it the name "<event>/<channel>" is used')
    event: str = Field(max_length=64, title="Событие", description="the event type it answers (low_balance, ...)")
    channel: Annotated[str | None, BeforeValidator(_channel)] = Field(
        None, title="Канал",
        description="sms, email, telegram, push (or an installed channel), or null = every channel the"
                    " subscriber has a contact for; legacy Agent/Winpop/WhatsApp are accepted (unsupported)",
    )
    subject: str = Field("", title="Заголовок", description="e-mail subject / SMS header")
    body: str = Field(min_length=1, title="Текст", description="%(name)s ... (standard) or Django syntax")
    enabled: bool = Field(True, title="Отправлять сообщение")
    every_day: bool = Field(False, title="Отправлять каждый день", description="days_before_block only")
    status_filter: Annotated[list[str], BeforeValidator(_statuses)] = Field(
        default_factory=list, title="Статусы абонента", description="subscriber statuses; [] = any",
    )
    contract_type: Literal["individual", "legal"] | None = Field(None, title="Тип договора",
                                                                 description="individual | legal | null = any")
    django: bool = Field(False, title="Использовать шаблонизатор Django")

    @field_validator("event")
    @classmethod
    def _event(cls, value: str) -> str:
        if not EVENT_TYPE_RE.match(value):
            raise ValueError(f"{value!r} must be lower-case letters, digits, '_', '.', '-' starting with a letter")
        return value

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    def store_fields(self) -> dict[str, Any]:
        """The Template row's fields, without owner and name."""
        return {"event_type": self.event, "channel": self.channel, "subject": self.subject, "body": self.body,
                "enabled": self.enabled, "every_day": self.every_day, "status_filter": list(self.status_filter),
                "contract_type": self.contract_type, "use_django": self.django}


def channel_names() -> tuple[list[str], tuple[str, ...]]:
    """(installed channels, legacy names) for checks and messages."""
    return live_channels(), legacy_channels()
