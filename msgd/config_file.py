"""Operators, channel settings and templates as one YAML file.

``msgd config load FILE`` calls :func:`load_config`; ``msgd config dump``
prints :func:`dump_config`.  ``examples/config.yaml`` is a commented example.

Format::

    version: 1                       # optional; the only version so far
    operators:
      - code: best                   # what events call the operator (event.operator.code)
        name: ООО Лучший провайдер
        email: noc@best.example      # sender e-mail for system messages
        timezone: Europe/Moscow      # an IANA zone name (zoneinfo)
        quiet_hours: {start: "22:00", end: "08:00"}   # optional; "HH:MM" or "HH:MM:SS"; null = none
        attempts: 3                  # send attempts, 1..20
        default_subject: Сообщение от провайдера
        warn_days: 3                 # "warn N days before blocking"; null = off
        channels:
          sms:                       # one mapping = position 1 (main gateway), or a list:
            outbox: true             #   [main, fallback] = positions 1, 2 (or give `position:`)
            url: https://smsc.ru/sys/send.php
            request_type: post
            params: "charset=utf-8&login=...&psw=...&phones=%sms%&mes=%text%"
            strip_plus: true
            login: ...               # secret keys (see below) go to ChannelSettings.secrets
            password: ...
          email: {outbox: true, host: localhost, port: 25, security: none}
    templates:
      - owner: null                  # null = every operator, or an operator code
        name: Низкий баланс (SMS)    # with owner, event and channel: how a template is matched
        event: low_balance
        channel: sms                 # null = every channel with a contact; legacy names accepted
        subject: ""
        body: "Уважаемый абонент %(name)s! ..."
        enabled: true
        every_day: false             # days_before_block only
        status_filter: []            # subscriber statuses; empty = any
        contract_type: null          # individual | legal | null
        django: false                # use Django templating

Rules:

- Strict: unknown keys, channel names, time zones, quiet hours, contract types
  and wrongly typed values are refused, with the place named
  (``operators[0].channels.sms.request_typo: unknown key``).  Every problem in
  the file is reported at once.
- All or nothing: the file is applied in one transaction; any refusal
  (including one from the renderer's ``check_template``) leaves the store as
  it was.
- Idempotent: operators are matched by ``code``; channel settings by
  (operator, channel, position); templates by (owner, event, channel, name).
  A template without ``name`` gets the stable name ``<event>/<channel or
  any>`` (the report says so); a stored template without a name is adopted by
  it.  Omitted fields take their defaults, so the file is the whole truth about
  what it lists.  Operators and templates not in the file are left alone; an
  operator's ``channels:`` is its complete list (slots not listed are
  deleted, the report counts them); without ``channels:`` they are left alone.
- Secrets: ``login`` and every key :func:`msgd.redact.is_secret_key` calls
  secret (password, token, api_key, md5_key, vapid_private_key...) are stored in
  ``ChannelSettings.secrets``, registered with the redactor, and dumped as
  ``"***"`` unless ``include_secrets=True``.  Loading ``"***"`` keeps the
  stored secret.  Secret values inside other strings (``psw=...`` in an SMS
  parameter string) are masked the same way and kept the same way.
- YAML: ``22:00`` is read as text (not YAML 1.1's base-60 number 1320) and a
  key given twice in one mapping is an error.
- Channel keys: a fixed list per channel below, plus any names the channel's
  sender class lists in ``config_keys``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import zoneinfo
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from msgd import userpattern
from msgd.redact import MASK, is_secret_key, register_secrets
from msgd.storable import unstorable_paths

FORMAT_VERSION = 1
KINDS = ("operators", "channels", "templates")
# Channels accepted when no sender module is discovered (yet).
FALLBACK_CHANNELS = ("sms", "email", "telegram", "push")
COMMON_CHANNEL_KEYS = ("outbox", "enabled", "position")
CHANNEL_KEYS: dict[str, tuple[str, ...]] = {
    # what services/senders/sms/sender.py reads, plus the manual's MD5 signature and sender name
    "sms": (
        "url",
        "request_type",
        "params",
        "strip_plus",
        "login",
        "password",
        "md5_key",
        "sender_name",
        "timeout",
        "verify",
        "ca_bundle",
        "success_pattern",
        "max_segments",
        "dedupes_message_id",
        "on_timeout",
    ),
    # what services/senders/email/sender.py reads
    "email": (
        "host",
        "port",
        "security",
        "login",
        "password",
        "timeout",
        "verify",
        "ca_bundle",
        "extended_logging",
        "max_bytes",
        "on_timeout",
    ),
    "telegram": ("token", "proxy", "api_url", "timeout", "max_parts", "on_timeout"),
    "push": ("vapid_public_key", "vapid_private_key", "vapid_subject", "ttl", "timeout", "on_timeout"),
}
BOOL_KEYS = {"outbox", "enabled", "strip_plus", "verify", "extended_logging", "dedupes_message_id"}
# services/senders/limits.py: per-message limits (positive whole numbers) and the timeout policy
LIMIT_KEYS = ("max_segments", "max_bytes", "max_parts")
ON_TIMEOUT = ("unknown", "retry")
# services/senders/email/sender.py: none | ssl | starttls, and its aliases
EMAIL_SECURITY = ("none", "ssl", "starttls", "tls", "smtps", "plain", "off")
CONTRACT_TYPES = ("individual", "legal")
EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
OPERATOR_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TIME_RE = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?$")

OPERATOR_KEYS = (
    "code",
    "name",
    "email",
    "timezone",
    "quiet_hours",
    "attempts",
    "default_subject",
    "warn_days",
    "channels",
)
TEMPLATE_KEYS = (
    "owner",
    "name",
    "event",
    "channel",
    "subject",
    "body",
    "enabled",
    "every_day",
    "status_filter",
    "contract_type",
    "django",
)
TOP_KEYS = ("version", "operators", "templates")

CheckTemplate = Callable[[Any], "str | None"]
WarnTemplate = Callable[[Any], "list[str]"]


class ConfigError(ValueError):
    """The file was refused; ``errors`` name each problem and its place."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(f"- {e}" for e in self.errors))


@dataclass
class LoadReport:
    """What a load changed, per kind (operators, channels, templates)."""

    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    updated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return (
            any(self.created.values()) or any(self.updated.values()) or any(self.deleted.values())
        )

    def summary(self) -> str:
        lines = []
        for kind in KINDS:
            parts = [
                f"{self.created[kind]} created",
                f"{self.updated[kind]} updated",
                f"{self.unchanged[kind]} unchanged",
            ]
            if self.deleted[kind]:
                parts.append(f"{self.deleted[kind]} deleted")
            lines.append(f"{kind}: {', '.join(parts)}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# -- YAML -------------------------------------------------------------------

_INT_RE = re.compile(
    r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
)
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_NO_SEXAGESIMAL = {"tag:yaml.org,2002:int": _INT_RE, "tag:yaml.org,2002:float": _FLOAT_RE}


class _Loader(yaml.SafeLoader):
    """Safe YAML without base-60 numbers (``22:00`` stays text) and without duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"key {key_node.value!r} appears twice",
                    key_node.start_mark,
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, _NO_SEXAGESIMAL.get(tag, rx)) for tag, rx in resolvers]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def parse_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        raise ConfigError([f"{where}{problem}" + (f" ({context})" if context else "")]) from None


def _looks_like_path(text: str) -> bool:
    if "\n" in text or not text.strip():
        return False
    if text.endswith((".yaml", ".yml", ".json")):
        return True
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # too long for a file name, NUL bytes: it is YAML text
        return False


def _read(source: str | os.PathLike[str] | Mapping[str, Any]) -> Any:
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, os.PathLike) or _looks_like_path(source):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError([f"{path}: no such file"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{path}: cannot read ({exc})"]) from None
        return parse_yaml(text)
    return parse_yaml(source)


# -- parsing and checking (no database) --------------------------------------


@dataclass
class _Channel:
    where: str
    channel: str
    position: int
    enabled: bool
    outbox: bool
    params: dict[str, Any]
    secrets: dict[str, Any]


@dataclass
class _Operator:
    where: str
    code: str
    fields: dict[str, Any]
    channels: list[_Channel] | None


@dataclass
class _Template:
    where: str
    owner: str | None
    name: str
    generated_name: bool
    fields: dict[str, Any]


@dataclass
class _Parsed:
    operators: list[_Operator] = field(default_factory=list)
    templates: list[_Template] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _channel_names() -> tuple[list[str], list[str], dict[str, tuple[str, ...]]]:
    """(live channels, legacy channels, extra keys each live sender declares)."""
    from services import senders

    registry = senders.registry()
    live = list(registry) or list(FALLBACK_CHANNELS)
    declared = {
        name: tuple(str(k) for k in getattr(cls, "config_keys", ()) or ())
        for name, cls in registry.items()
    }
    return live, list(senders.LEGACY_CHANNELS), declared


def _normalize_channel(name: Any) -> str | None:
    from services.senders import normalize_channel

    return normalize_channel(name)


def _is_json_value(value: Any) -> bool:
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list):
        return all(_is_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v) for k, v in value.items())
    return False


def _type_name(value: Any) -> str:
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def mapping(self, value: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.err(where, f"must be a mapping (key: value), got {_type_name(value)}")
            return None
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                self.err(f"{where}.{key}", f"unknown key (known: {', '.join(allowed)})")
        return value

    def text(
        self,
        data: dict[str, Any],
        key: str,
        where: str,
        *,
        default: str = "",
        required: bool = False,
        max_length: int | None = None,
    ) -> str:
        """Text (numbers are taken as their text); missing or null = ``default``."""
        if data.get(key) is None:
            if required:
                self.err(f"{where}.{key}", "is required")
            return default
        value = data[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.err(f"{where}.{key}", f"must be text, got {_type_name(value)}")
            return default
        if required and not value.strip():
            self.err(f"{where}.{key}", "must not be empty")
        if max_length is not None and len(value) > max_length:
            self.err(f"{where}.{key}", f"is longer than {max_length} characters")
        return value

    def boolean(self, data: dict[str, Any], key: str, where: str, default: bool) -> bool:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.err(f"{where}.{key}", f"must be true or false, got {value!r}")
            return default
        return value

    def integer(
        self,
        data: dict[str, Any],
        key: str,
        where: str,
        default: int | None,
        lo: int,
        hi: int,
        nullable: bool = False,
    ) -> int | None:
        value = data.get(key)
        if value is None:
            if key in data and not nullable:
                self.err(f"{where}.{key}", "must be a whole number, not null")
            return default if key not in data else None if nullable else default
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(f"{where}.{key}", f"must be a whole number, got {value!r}")
            return default
        if not lo <= value <= hi:
            self.err(f"{where}.{key}", f"must be between {lo} and {hi}, got {value}")
            return default
        return value


def _parse_time(value: Any) -> dt.time | None:
    if not isinstance(value, str):
        return None
    match = TIME_RE.match(value.strip())
    if not match:
        return None
    return dt.time(int(match[1]), int(match[2]), int(match[3] or 0))


def _check_operator(
    c: _Checker,
    raw: Any,
    where: str,
    live: list[str],
    legacy: list[str],
    declared: dict[str, tuple[str, ...]],
    notes: list[str],
) -> _Operator | None:
    data = c.mapping(raw, where, OPERATOR_KEYS)
    if data is None:
        return None
    code = c.text(data, "code", where, required=True, max_length=64)
    if code and not OPERATOR_CODE_RE.match(code):
        c.err(f"{where}.code", f"{code!r} must be letters, digits, '_', '.', '-' (no spaces)")
    fields: dict[str, Any] = {
        "name": c.text(data, "name", where, required=True, max_length=200),
        "email": c.text(data, "email", where, max_length=254).strip(),
        "timezone": c.text(data, "timezone", where, default="Europe/Moscow", max_length=64),
        "default_subject": c.text(data, "default_subject", where, max_length=200),
        "attempts": c.integer(data, "attempts", where, 3, 1, 20),
        "warn_days": c.integer(data, "warn_days", where, None, 0, 365, nullable=True),
        "quiet_start": None,
        "quiet_end": None,
    }
    if fields["email"]:
        from services.senders.email.address import sender_problem  # the e-mail sender's own check

        problem = sender_problem(fields["email"])
        if problem:
            c.err(f"{where}.email", problem)
    try:
        zoneinfo.ZoneInfo(fields["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        c.err(
            f"{where}.timezone",
            f"unknown time zone {fields['timezone']!r} (use a name like Europe/Moscow)",
        )
    quiet = data.get("quiet_hours")
    if quiet is not None:
        q = c.mapping(quiet, f"{where}.quiet_hours", ("start", "end"))
        if q is not None:
            times = {}
            for key in ("start", "end"):
                if key not in q:
                    c.err(f"{where}.quiet_hours.{key}", "is required (or remove quiet_hours)")
                    continue
                parsed = _parse_time(q[key])
                if parsed is None:
                    c.err(
                        f"{where}.quiet_hours.{key}",
                        f'{q[key]!r} is not a time "HH:MM" or "HH:MM:SS"',
                    )
                else:
                    times[key] = parsed
            if len(times) == 2 and times["start"] == times["end"]:
                c.err(
                    f"{where}.quiet_hours", "start and end are equal (remove quiet_hours for none)"
                )
            elif len(times) == 2:
                fields["quiet_start"], fields["quiet_end"] = times["start"], times["end"]
    channels = None
    if "channels" in data:
        channels = _check_channels(
            c, data["channels"], f"{where}.channels", live, legacy, declared, notes
        )
    return _Operator(where, code, fields, channels)


def _check_channels(
    c: _Checker,
    raw: Any,
    where: str,
    live: list[str],
    legacy: list[str],
    declared: dict[str, tuple[str, ...]],
    notes: list[str],
) -> list[_Channel]:
    out: list[_Channel] = []
    if raw is None:
        return out
    if not isinstance(raw, dict):
        c.err(where, f"must be a mapping of channel name to settings, got {_type_name(raw)}")
        return out
    seen: dict[str, str] = {}
    for name, value in raw.items():
        place = f"{where}.{name}"
        channel = _normalize_channel(str(name))
        if channel in legacy:
            c.err(
                place,
                f"{channel!r} is a legacy channel: it takes no settings (its messages end as unsupported)",
            )
            continue
        if channel not in live:
            c.err(place, f"unknown channel (known: {', '.join(live)})")
            continue
        if channel in seen:
            c.err(place, f"channel {channel!r} is already configured as {seen[channel]!r}")
            continue
        seen[channel] = str(name)
        items = value if isinstance(value, list) else [value]
        positions: set[int] = set()
        for i, item in enumerate(items):
            item_where = f"{place}[{i}]" if isinstance(value, list) else place
            default_position = i + 1
            setting = _check_setting(
                c, item, item_where, channel, default_position, declared, notes
            )
            if setting is None:
                continue
            if setting.position in positions:
                c.err(item_where, f"position {setting.position} is given twice")
                continue
            positions.add(setting.position)
            out.append(setting)
    return out


def _check_setting(
    c: _Checker,
    raw: Any,
    where: str,
    channel: str,
    default_position: int,
    declared: dict[str, tuple[str, ...]],
    notes: list[str],
) -> _Channel | None:
    known = CHANNEL_KEYS.get(channel)
    extra = declared.get(channel, ())
    if raw is None:
        raw = {}
    if known is None and not extra:
        # A discovered channel this file format has no key list for: take any keys.
        if not isinstance(raw, dict):
            c.err(where, f"must be a mapping (key: value), got {_type_name(raw)}")
            return None
        data: dict[str, Any] | None = raw
    else:
        allowed = tuple(dict.fromkeys([*COMMON_CHANNEL_KEYS, *(known or ()), *extra]))
        data = c.mapping(raw, where, allowed)
    if data is None:
        return None
    position = c.integer(data, "position", where, default_position, 1, 9) or default_position
    setting = _Channel(
        where=where,
        channel=channel,
        position=position,
        enabled=c.boolean(data, "enabled", where, True),
        outbox=c.boolean(data, "outbox", where, False),
        params={},
        secrets={},
    )
    for key, value in data.items():
        if key in COMMON_CHANNEL_KEYS or not isinstance(key, str):
            continue
        place = f"{where}.{key}"
        if not _is_json_value(value):
            c.err(
                place,
                f"must be text, a number, true/false, a list or a mapping (got {_type_name(value)}; quote it)",
            )
            continue
        if key in BOOL_KEYS and value is not None and not isinstance(value, bool):
            c.err(place, f"must be true or false, got {value!r}")
            continue
        if key == "login" or is_secret_key(key):
            if isinstance(value, dict | list | bool):
                c.err(place, f"a secret must be text or a number, got {_type_name(value)}")
            elif value not in (None, ""):
                setting.secrets[key] = value
            continue
        if value is None:
            continue
        setting.params[key] = value
    _check_params(c, setting, notes)
    return setting


def _check_params(c: _Checker, s: _Channel, notes: list[str]) -> None:
    p = s.params
    if "port" in p and (
        isinstance(p["port"], bool) or not isinstance(p["port"], int) or not 0 < p["port"] < 65536
    ):
        c.err(f"{s.where}.port", f"must be a port number 1..65535, got {p['port']!r}")
    if "timeout" in p and (
        isinstance(p["timeout"], bool)
        or not isinstance(p["timeout"], int | float)
        or p["timeout"] <= 0
    ):
        c.err(f"{s.where}.timeout", f"must be a positive number of seconds, got {p['timeout']!r}")
    for key in LIMIT_KEYS:
        if key in p and (isinstance(p[key], bool) or not isinstance(p[key], int) or p[key] < 1):
            c.err(f"{s.where}.{key}", f"must be a positive whole number, got {p[key]!r}")
    if "on_timeout" in p and str(p["on_timeout"]).strip().lower() not in ON_TIMEOUT:
        c.err(f"{s.where}.on_timeout", f"{p['on_timeout']!r} is not one of unknown (a request that timed out"
                                       " is not sent again), retry (it is, at the risk of a duplicate)")
    if (
        s.channel == "email"
        and "security" in p
        and str(p["security"]).lower() not in EMAIL_SECURITY
    ):
        c.err(f"{s.where}.security", f"{p['security']!r} is not one of {', '.join(EMAIL_SECURITY)}")
    for key in ("url", "api_url"):
        if key in p and not re.match(r"^https?://[^\s/]+", str(p[key])):
            c.err(f"{s.where}.{key}", f"{p[key]!r} must start with http:// or https:// and a host")
    for key, value in p.items():
        if key in {
            "request_type",
            "params",
            "sender_name",
            "security",
            "host",
            "ca_bundle",
            "success_pattern",
            "proxy",
            "vapid_public_key",
            "vapid_subject",
        } and not isinstance(value, str):
            c.err(f"{s.where}.{key}", f"must be text, got {_type_name(value)}")
    pattern = p.get("success_pattern")
    if isinstance(pattern, str) and pattern:
        try:
            userpattern.compile_pattern(pattern)
        except userpattern.PatternError as exc:
            c.err(f"{s.where}.success_pattern", f"{pattern!r} is not a regular expression msgd can run: {exc}")
    text = p.get("params")
    if isinstance(text, str) and _inline_secrets(text):
        notes.append(
            f"{s.where}.params: holds secret values (password, key, token); they are stored "
            f"as given and shown as {MASK} in dumps and logs"
        )


def _is_secret_pair(key: str, value: str) -> bool:
    """psw=..., apikey=..., token=... (but not a %placeholder%)."""
    return is_secret_key(key.strip()) and not value.strip("'\"").startswith("%") and value != MASK


def _inline_secrets(text: str) -> list[str]:
    """Values of secret-looking keys inside a key=value&... string."""
    found = []
    for pair in text.split("&"):
        key, sep, value = pair.partition("=")
        if sep and value and _is_secret_pair(key, value):
            found += [value, value.strip("'\"")]
    return [v for v in found if v]


def _check_template(
    c: _Checker, raw: Any, where: str, live: list[str], legacy: list[str], notes: list[str]
) -> _Template | None:
    data = c.mapping(raw, where, TEMPLATE_KEYS)
    if data is None:
        return None
    owner = data.get("owner")
    if owner is not None and not isinstance(owner, str):
        c.err(f"{where}.owner", f"must be an operator code or null, got {_type_name(owner)}")
        owner = None
    event = c.text(data, "event", where, required=True, max_length=64)
    if event and not EVENT_TYPE_RE.match(event):
        c.err(
            f"{where}.event",
            f"{event!r} must be lower-case letters, digits, '_', '.', '-' starting with a letter",
        )
    channel = None
    raw_channel = data.get("channel")
    if raw_channel is not None:
        if not isinstance(raw_channel, str):
            c.err(
                f"{where}.channel", f"must be a channel name or null, got {_type_name(raw_channel)}"
            )
        else:
            channel = _normalize_channel(raw_channel)
            if channel is not None and channel not in live and channel not in legacy:
                c.err(
                    f"{where}.channel",
                    f"unknown channel {raw_channel!r} (known: {', '.join([*live, *legacy])}; null = every channel)",
                )
    body = c.text(data, "body", where, required=True)
    contract = data.get("contract_type")
    if contract is not None and contract not in CONTRACT_TYPES:
        c.err(
            f"{where}.contract_type",
            f"{contract!r} is not one of individual, legal (or null = any)",
        )
        contract = None
    statuses = data.get("status_filter")
    status_filter: list[str] = []
    if statuses is not None:
        if isinstance(statuses, str | int) and not isinstance(statuses, bool):
            statuses = [statuses]
        if not isinstance(statuses, list) or not all(
            isinstance(s, str | int) and not isinstance(s, bool) for s in statuses
        ):
            c.err(f"{where}.status_filter", "must be a list of subscriber statuses ([] = any)")
        else:
            status_filter = list(dict.fromkeys(str(s) for s in statuses))
    fields = {
        "event_type": event,
        "channel": channel,
        "subject": c.text(data, "subject", where),
        "body": body,
        "enabled": c.boolean(data, "enabled", where, True),
        "every_day": c.boolean(data, "every_day", where, False),
        "status_filter": status_filter,
        "contract_type": contract,
        "use_django": c.boolean(data, "django", where, False),
    }
    name = c.text(data, "name", where, max_length=200).strip()
    generated = not name
    if generated:
        name = f"{event}/{channel or 'any'}"
        notes.append(
            f"{where}: has no name; it is matched as {name!r} (add `name:` to keep it matched "
            "when you change its event or channel)"
        )
    if fields["every_day"] and event != "days_before_block":
        notes.append(f"{where}.every_day: only days_before_block templates use it")
    return _Template(where, owner, name, generated, fields)


def _place(path: list[str | int]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out or "(file)"


def parse(data: Any) -> _Parsed:
    """Check the whole structure; raise ConfigError listing every problem."""
    c = _Checker()
    out = _Parsed()
    if data is None:
        data = {}
    unstorable = unstorable_paths(data)  # PostgreSQL would refuse the row half-way through the load
    if unstorable:
        raise ConfigError([f"{_place(path)}: {why}" for path, why in unstorable])
    top = c.mapping(data, "(file)", TOP_KEYS)
    if top is None:
        raise ConfigError(c.errors)
    c.errors = [e.replace("(file).", "", 1) for e in c.errors]
    version = top.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        c.err(
            "version", f"unsupported version {version!r} (this msgd reads version {FORMAT_VERSION})"
        )
    live, legacy, declared = _channel_names()
    operators = top.get("operators") or []
    if not isinstance(operators, list):
        c.err("operators", "must be a list of operators (- code: ...)")
        operators = []
    codes: dict[str, str] = {}
    for i, raw in enumerate(operators):
        op = _check_operator(c, raw, f"operators[{i}]", live, legacy, declared, out.notes)
        if op is None:
            continue
        if op.code in codes:
            c.err(f"operators[{i}].code", f"{op.code!r} is already used by {codes[op.code]}")
            continue
        codes[op.code] = f"operators[{i}]"
        out.operators.append(op)
    templates = top.get("templates") or []
    if not isinstance(templates, list):
        c.err("templates", "must be a list of templates (- event: ...)")
        templates = []
    keys: dict[tuple[Any, ...], str] = {}
    for i, raw in enumerate(templates):
        t = _check_template(c, raw, f"templates[{i}]", live, legacy, out.notes)
        if t is None:
            continue
        key = (t.owner, t.fields["event_type"], t.fields["channel"], t.name)
        if key in keys:
            c.err(
                f"templates[{i}]",
                f"same owner, event, channel and name as {keys[key]}: give it another name",
            )
            continue
        keys[key] = f"templates[{i}]"
        out.templates.append(t)
    if c.errors:
        raise ConfigError(c.errors)
    return out


# -- applying (one transaction) ----------------------------------------------


def _keep_masked(new: Any, old: Any) -> Any:
    """A value shown masked in a dump stands for the stored value."""
    if new == MASK and old is not None:
        return old
    if isinstance(new, str) and MASK in new and isinstance(old, str) and _mask(old) == new:
        return old
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: _keep_masked(v, old.get(k)) for k, v in new.items()}
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [_keep_masked(n, o) for n, o in zip(new, old, strict=True)]
    return new


_URL_PASSWORD_RE = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@/\s]+@", re.IGNORECASE)


def _still_masked(value: Any) -> bool:
    """A masked placeholder that was not resolved to a stored value."""
    if isinstance(value, dict):
        return any(_still_masked(v) for v in value.values())
    if isinstance(value, list):
        return any(_still_masked(v) for v in value)
    if not isinstance(value, str) or MASK not in value:
        return False
    if value == MASK or f":{MASK}@" in value:
        return True
    return any(
        val == MASK and is_secret_key(key.strip())
        for key, _, val in (pair.partition("=") for pair in value.split("&"))
    )


def _mask(value: Any) -> Any:
    """Deterministic masking for dumps (the same in every process, so a reload can
    recognise a masked value): secret keys, key=value pairs with secret keys, and
    passwords in URLs."""
    if isinstance(value, str):
        pairs = []
        for pair in value.split("&"):
            key, sep, val = pair.partition("=")
            if sep and val and _is_secret_pair(key, val):
                pair = f"{key}={MASK}"
            pairs.append(pair)
        return _URL_PASSWORD_RE.sub(lambda m: f"{m['head']}{MASK}@", "&".join(pairs))
    if isinstance(value, dict):
        return {
            k: MASK if is_secret_key(k) and v not in (None, "") else _mask(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _save_if_changed(obj: Any, fields: dict[str, Any]) -> bool:
    changed = [k for k, v in fields.items() if getattr(obj, k) != v]
    for k in changed:
        setattr(obj, k, fields[k])
    if changed:
        obj.save()
    return bool(changed)


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    check_template: CheckTemplate | None = None,
    warn_template: WarnTemplate | None = None,
) -> LoadReport:
    """Load a YAML file (path), YAML text or parsed mapping into the store.

    All or nothing; raises ConfigError (nothing changed) when anything is refused.
    ``check_template`` refuses a template (returns why); ``warn_template`` returns
    warnings that do not stop the load (they join the report's notes).
    The store must be set up (``msgd.store.setup()``) and migrated.
    """
    parsed = parse(_read(source))
    from django.db import transaction

    report = LoadReport(notes=list(parsed.notes))
    errors: list[str] = []
    secrets: list[Any] = []

    class _Refused(Exception):
        pass

    try:
        with transaction.atomic():
            _apply(parsed, report, errors, secrets, check_template, warn_template)
            if errors:
                raise _Refused
    except _Refused:
        raise ConfigError(errors) from None
    register_secrets(secrets)
    return report


def _apply(
    parsed: _Parsed,
    report: LoadReport,
    errors: list[str],
    secrets: list[Any],
    check_template: CheckTemplate | None,
    warn_template: WarnTemplate | None = None,
) -> None:
    from msgd.store.models import ChannelSettings, Operator, Template

    operators: dict[str, Any] = {}
    for op in parsed.operators:
        obj = Operator.objects.filter(code=op.code).first()
        if obj is None:
            obj = Operator.objects.create(code=op.code, **op.fields)
            report.created["operators"] += 1
        elif _save_if_changed(obj, op.fields):
            report.updated["operators"] += 1
        else:
            report.unchanged["operators"] += 1
        operators[op.code] = obj
        if op.channels is None:
            continue
        wanted = {(s.channel, s.position) for s in op.channels}
        for row in ChannelSettings.objects.filter(operator=obj):
            if (row.channel, row.position) not in wanted:
                report.notes.append(
                    f"{op.where}.channels: deleted {row.channel} position {row.position} (not in the file)"
                )
                row.delete()
                report.deleted["channels"] += 1
        for s in op.channels:
            _apply_channel(obj, s, report, errors, secrets)

    for t in parsed.templates:
        owner = None
        if t.owner is not None:
            owner = operators.get(t.owner) or Operator.objects.filter(code=t.owner).first()
            if owner is None:
                errors.append(
                    f"{t.where}.owner: no operator with code {t.owner!r} (in this file or the store)"
                )
                continue
        found = _find_templates(
            Template, owner, t.fields["event_type"], t.fields["channel"], t.name
        )
        if not found and t.generated_name:
            found = _find_templates(
                Template, owner, t.fields["event_type"], t.fields["channel"], ""
            )[:1]
        if len(found) > 1:
            ids = ", ".join(str(f.id) for f in found)
            errors.append(
                f"{t.where}: {len(found)} stored templates (ids {ids}) have this owner, event, "
                "channel and name; rename them so one matches"
            )
            continue
        fields = {**t.fields, "name": t.name}
        obj = found[0] if found else Template(owner=owner, **fields)
        changed: list[str] = []
        if found:
            if not found[0].name:
                report.notes.append(
                    f"{t.where}: adopted stored template id {obj.id}, which had no name"
                )
            changed = [k for k, v in fields.items() if getattr(obj, k) != v]
            for k in changed:
                setattr(obj, k, fields[k])
        reason = check_template(obj) if check_template else None
        if reason:
            errors.append(f"{t.where} ({t.name}): {reason}")
            continue
        for warning in warn_template(obj) if warn_template else ():
            report.notes.append(f"{t.where} ({t.name}): warning: {warning}")
        if not found:
            obj.save()
            report.created["templates"] += 1
        elif changed:
            obj.save()
            report.updated["templates"] += 1
        else:
            report.unchanged["templates"] += 1


def _find_templates(
    model: Any, owner: Any, event: str, channel: str | None, name: str
) -> list[Any]:
    from django.db.models import Q

    qs = model.objects.filter(event_type=event, name=name)
    qs = qs.filter(owner__isnull=True) if owner is None else qs.filter(owner=owner)
    qs = (
        qs.filter(Q(channel__isnull=True) | Q(channel=""))
        if channel is None
        else qs.filter(channel=channel)
    )
    return list(qs.order_by("id"))


def _apply_channel(
    op: Any, s: _Channel, report: LoadReport, errors: list[str], secrets: list[Any]
) -> None:
    from msgd.store.models import ChannelSettings

    row = ChannelSettings.objects.filter(
        operator=op, channel=s.channel, position=s.position
    ).first()
    old_params = row.params if row else {}
    old_secrets = row.secrets if row else {}
    values = {}
    for key, value in s.secrets.items():
        if value == MASK:
            if key not in old_secrets:
                errors.append(
                    f"{s.where}.{key}: {MASK!r} means 'keep the stored secret', but none is stored"
                )
                continue
            value = old_secrets[key]
        values[key] = value
    params = {k: _keep_masked(v, old_params.get(k)) for k, v in s.params.items()}
    for key, value in params.items():
        if _still_masked(value):
            errors.append(
                f"{s.where}.{key}: holds a masked secret ({MASK!r}) that matches no stored value; "
                "write the real value"
            )
    secrets += list(values.values()) + [
        x for v in params.values() if isinstance(v, str) for x in _inline_secrets(v)
    ]
    fields = {"enabled": s.enabled, "outbox": s.outbox, "params": params, "secrets": values}
    if row is None:
        ChannelSettings.objects.create(
            operator=op, channel=s.channel, position=s.position, **fields
        )
        report.created["channels"] += 1
    elif _save_if_changed(row, fields):
        report.updated["channels"] += 1
    else:
        report.unchanged["channels"] += 1


# -- dumping -----------------------------------------------------------------

_DUMP_HEADER = """\
# msgd configuration: operators, channel settings, templates.
# Load with `msgd config load FILE` (all or nothing; loading twice changes nothing).
# Secrets are shown as "***"; loading "***" keeps the stored value.
# Format: see examples/config.yaml and msgd/config_file.py.
"""


def _time(value: dt.time | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def dump_config(include_secrets: bool = False) -> str:
    """The store's operators, channel settings and templates in the load_config format."""
    from msgd.store.models import ChannelSettings, Operator, Template

    operators = []
    for op in Operator.objects.order_by("code"):
        entry: dict[str, Any] = {
            "code": op.code,
            "name": op.name,
            "email": op.email,
            "timezone": op.timezone,
            "quiet_hours": (
                {"start": _time(op.quiet_start), "end": _time(op.quiet_end)}
                if op.quiet_start is not None and op.quiet_end is not None
                else None
            ),
            "attempts": op.attempts,
            "default_subject": op.default_subject,
            "warn_days": op.warn_days,
        }
        rows = list(ChannelSettings.objects.filter(operator=op).order_by("channel", "position"))
        channels: dict[str, Any] = {}
        for name in dict.fromkeys(r.channel for r in rows):
            mine = [r for r in rows if r.channel == name]
            items = [_dump_setting(r, i + 1, include_secrets) for i, r in enumerate(mine)]
            channels[name] = items[0] if len(mine) == 1 and mine[0].position == 1 else items
        entry["channels"] = channels
        operators.append(entry)

    templates = []
    rows = sorted(
        Template.objects.select_related("owner"),
        key=lambda t: (
            t.owner.code if t.owner else "",
            t.event_type,
            t.channel or "",
            t.name,
            t.id,
        ),
    )
    for t in rows:
        templates.append(
            {
                "owner": t.owner.code if t.owner else None,
                "name": t.name or f"{t.event_type}/{t.channel or 'any'}",
                "event": t.event_type,
                "channel": t.channel or None,
                "subject": t.subject,
                "body": t.body,
                "enabled": t.enabled,
                "every_day": t.every_day,
                "status_filter": list(t.status_filter or []),
                "contract_type": t.contract_type or None,
                "django": t.use_django,
            }
        )
    doc = {"version": FORMAT_VERSION, "operators": operators, "templates": templates}
    body = yaml.dump(doc, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)
    return _DUMP_HEADER + body


def _dump_setting(row: Any, index: int, include_secrets: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if row.position != index:
        out["position"] = row.position
    if not row.enabled:
        out["enabled"] = False
    out["outbox"] = row.outbox
    params = dict(row.params or {})
    out.update(params if include_secrets else {k: _mask(v) for k, v in params.items()})
    for key, value in (row.secrets or {}).items():
        out[key] = value if include_secrets or value in (None, "") else MASK
    return out
