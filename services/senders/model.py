"""A channel's settings as one typed model (pydantic v2): what every channel's ``settings.py`` builds on.

One model per channel is the only judge of its settings: ``msgd config load``, the web admin,
``msgd config schema`` (JSON Schema), ``msgd doctor`` and the sender itself all call
:meth:`SettingsModel.parse`, so a value that loads is a value that sends and a dump always loads
back. Conventions:

* unknown keys are errors (``extra="forbid"``) with a "did you mean" hint;
* ``null`` or an empty text means "not given": the field's default applies (what a form's empty
  field and YAML's ``key:`` mean);
* values are read as YAML users write them: ``yes``/``no``/``on``/``1`` for booleans, ``"25"`` for
  numbers, numbers for texts and secrets (``password: 12345``);
* secrets (passwords, keys, tokens, and the login, which is stored with them) are ``SecretStr``:
  never printed, stored apart (``ChannelSettings.secrets``), dumped as ``***``;
* rules that tie several settings together (a preset that needs a sender name) live in
  :meth:`SettingsModel.problems`, which sees whether the slot is an outbox (``outbox: true`` sends
  nothing, so a gateway's required settings may be left out there);
* field ``title`` is the name staff know, in English (the admin translates it: the original
  manual's Russian label is in msgd/locale/ru/LC_MESSAGES/django.po under this English text) and
  ``description`` says what the value means: the admin form and the JSON Schema show both. The
  description is an English msgid too (the admin shows its Russian text from the same catalog; a
  description is a fixed text, never built with an f-string, so the catalog can hold it, and keeps
  placeholders such as ``%sms%`` and value names such as ``post`` as they are typed).

:meth:`SettingsModel.parse` raises :class:`SettingsInvalid`, whose ``problems`` are
``(location, plain words)`` pairs: the location is a tuple of keys below the channel's settings.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self, get_args, get_origin
from urllib.parse import urlsplit

from annotated_types import Gt
from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

Location = tuple[str | int, ...]
ON_TIMEOUT = ("unknown", "retry")


@dataclass(frozen=True)
class Problem:
    """One refused setting: where (keys below the channel's settings) and why, in plain words."""

    loc: Location
    message: str

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.loc)
        return f"{where}: {self.message}" if where else self.message


class SettingsInvalid(ValueError):
    """The settings were refused; ``problems`` lists every refusal at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _number_as_text(value: Any) -> Any:
    """YAML reads ``password: 12345`` and ``sender_name: 2024`` as numbers: they are text here."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def no_bool(value: Any) -> Any:
    """``true`` is not a number here (pydantic would read it as 1)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {'true' if value else 'false'}")
    return value


Whole = Annotated[int, BeforeValidator(no_bool)]
"""A whole number (``"25"`` is read as 25; ``true`` is refused)."""
Number = Annotated[float, BeforeValidator(no_bool)]
"""A number (``"2.5"`` is read as 2.5; ``true`` is refused)."""

Secret = Annotated[SecretStr, BeforeValidator(_number_as_text)]
"""A secret setting: stored apart, never printed or logged, dumped as ``***``."""


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def scheme_host(url: str) -> str:
    """scheme://host[:port] of a URL, "" when it has no scheme or host: never its user,
    password, path or query (a gateway may carry an API key in any of them)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return ""
    if not parts.scheme or not host:
        return ""
    try:
        port = parts.port
    except ValueError:
        port = None
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


_LABEL = re.compile(r"^[^\W_](?:[\w-]*[^\W_])?$|^\w+$")


def host_name_ok(host: str) -> bool:
    """Whether ``host`` is a host name (letters of any script, digits, "-" and "_" between the
    dots; IDNA-encodable) or an IP address: never one with a space, a scheme, a port or markup."""
    import ipaddress

    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if not host or not all(_LABEL.match(label) for label in labels):
        return False
    try:
        host.rstrip(".").encode("idna")
    except UnicodeError:  # a label over 63 characters, a name over 253
        return False
    return True


def http_url(value: str) -> str:
    """An http(s) URL with a host, kept as typed (no trailing slash added); the refusal shows its
    scheme and host only (a gateway may carry an API key in the path or query). A space (write
    %20) or a control character anywhere, a host that is no host name, a port outside 1..65535
    are refused: each would fail only when a message is sent."""
    shown = scheme_host(value)
    start = (f"{shown!r} " if shown else "") + "is not a valid http(s) URL: "
    if not re.match(r"^https?://[^\s/?#]+", value, re.IGNORECASE):
        raise ValueError(start + "it must start with http:// or https:// and a host")
    if re.search(r"[\s\x00-\x1f\x7f]", value):
        raise ValueError(start + "it holds a space or a control character (write a space as %20)")
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:  # 0, over 65535, or not a number
        raise ValueError(start + "its port must be a number 1..65535")
    if not host_name_ok(parts.hostname or ""):
        raise ValueError(start + "its host is not a host name (letters, digits, \"-\" and dots)")
    return value


def server_host(value: str) -> str:
    """A server's host name or IP address alone (the SMTP server's): no scheme, port or space."""
    text = value.strip()
    if text and not host_name_ok(text):
        raise ValueError(f"{text!r} is not a host name: write the server's name alone, such as smtp.example.ru"
                         " (no http://, no port: the port has its own setting)")
    return text[1:-1] if text.startswith("[") and text.endswith("]") else text  # [::1]: smtplib wants ::1


HttpUrl = Annotated[str, AfterValidator(http_url)]
"""A gateway's address: http:// or https:// and a host."""

OnTimeout = Annotated[Literal["unknown", "retry"], BeforeValidator(_lower)]


class SettingsModel(BaseModel):
    """Base of every channel's settings model (see the module's docstring for the conventions)."""

    model_config = ConfigDict(
        extra="forbid",
        coerce_numbers_to_str=True,
        str_strip_whitespace=True,
        validate_default=False,
        frozen=True,
        hide_input_in_errors=True,
        json_schema_mode_override="validation",
    )

    # Keys a channel slot has besides its settings (ChannelSettings columns): kept out of the
    # model, but a "did you mean" hint may point at them.
    SLOT_KEYS: ClassVar[tuple[str, ...]] = ("outbox", "enabled", "position")
    # Keys the rules across fields (``problems``) read to decide what else is required (an SMS
    # preset): while one of them is refused, those rules are not run (they would guess).
    DECIDING_KEYS: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _unset_empty(cls, data: Any) -> Any:
        """``null`` and empty texts are "not given" (the field's default applies)."""
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v is not None and not (isinstance(v, str) and not v.strip())}
        return data

    def problems(self, outbox: bool) -> Iterator[Problem]:
        """Rules across fields (required settings of a preset, a request type...). ``outbox``:
        the slot writes files instead of sending, so settings only a real send needs may be
        missing. Channels override; the base has none."""
        return iter(())

    @classmethod
    def parse(cls, values: Mapping[str, Any], *, outbox: bool = False) -> Self:
        """The settings from stored or typed values; SettingsInvalid naming every problem."""
        try:
            model = cls.model_validate(dict(values))
        except ValidationError as exc:
            refused = _problems(exc, cls)
            raise SettingsInvalid(refused + cls._problems_besides(values, refused, outbox)) from None
        found = list(model.problems(outbox))
        if found:
            raise SettingsInvalid(found)
        return model

    @classmethod
    def _problems_besides(cls, values: Mapping[str, Any], refused: list[Problem], outbox: bool) -> list[Problem]:
        """The rules across fields, run on the values without the ``refused`` keys, so one save
        names every problem (a bad rate_limit and the login a preset needs); none when a deciding
        key or an unknown key was refused."""
        keys = {str(p.loc[0]) for p in refused if p.loc}
        if len(keys) < len(refused) or keys & set(cls.DECIDING_KEYS) or not keys <= set(cls.model_fields):
            return []
        try:
            rest = cls.model_validate({k: v for k, v in values.items() if k not in keys})
        except ValidationError:
            return []
        return [p for p in rest.problems(outbox) if not p.loc or str(p.loc[0]) not in keys]

    @classmethod
    def ordered_fields(cls) -> list[str]:
        """Field names, the channel's own first and the shared ones (timeout, verify...) after:
        the order a form and the documentation show them in."""
        order: list[str] = []
        for klass in cls.__mro__:
            own = [n for n in getattr(klass, "__annotations__", {}) if n in cls.model_fields and n not in order]
            order += own
        return order

    @classmethod
    def secret_fields(cls) -> tuple[str, ...]:
        """Names of the fields typed as secrets (stored in ``ChannelSettings.secrets``); worked
        out once per model (senders ask on every message)."""
        found = _SECRET_FIELDS.get(cls)
        if found is None:
            found = _SECRET_FIELDS[cls] = tuple(name for name, info in cls.model_fields.items()
                                                if _is_secret(info.annotation))
        return found

    def secret_values(self) -> dict[str, str]:
        """The secrets that are set, revealed (for the sender and for storage)."""
        out = {}
        for name in self.secret_fields():
            value = getattr(self, name)
            if value is not None:
                out[name] = value.get_secret_value()
        return out

    def storage(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(params, secrets) as stored in ``ChannelSettings``: only what was given, normalised
        (``strip_plus: yes`` is stored as ``true``), so a dump is what loads back."""
        secrets = set(self.secret_fields())
        given = self.model_dump(mode="json", exclude_unset=True, exclude_none=True, exclude=secrets)
        revealed = {k: v for k, v in self.secret_values().items() if k in self.model_fields_set}
        return given, revealed


def _problems(exc: ValidationError, model: type[SettingsModel]) -> list[Problem]:
    """One problem per setting: the members of a union (``params``: text or a mapping) refused
    together read as one ("must be text or a mapping, got a list")."""
    by_key: dict[Location, list[str]] = {}
    for e in exc.errors():
        by_key.setdefault(tuple(e["loc"][:1]), []).append(plain_words(e, model))
    out = []
    for loc, words in by_key.items():
        wanted = [w.removeprefix("must be ").rsplit(", got ", 1) for w in words]
        if len(words) > 1 and all(w.startswith("must be ") and len(p) == 2 for w, p in zip(words, wanted, strict=True)):
            words = [f"must be {' or '.join(dict.fromkeys(p[0] for p in wanted))}, got {wanted[0][1]}"]
        out.append(Problem(loc, "; or ".join(dict.fromkeys(words))))
    return out


_SECRET_FIELDS: dict[type[SettingsModel], tuple[str, ...]] = {}


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(arg) for arg in get_args(annotation)) if get_origin(annotation) else False


class HttpSettings(SettingsModel):
    """Settings every HTTP channel reads the same way (services/senders/net.py)."""

    timeout: Annotated[float, Gt(0), AllowInfNan(False), BeforeValidator(no_bool)] | None = Field(
        None, title="Timeout",
        description="seconds to wait for an answer; empty = MSGD_HTTP_TIMEOUT (15)",
    )
    verify: bool = Field(True, title="Check the TLS certificate",
                         description="verify the server's HTTPS certificate (false only for tests)")
    ca_bundle: str | None = Field(None, title="CA bundle",
                                  description="a PEM file of CA certificates to trust instead of the system's")
    on_timeout: OnTimeout = Field(
        "unknown", title="After a timeout",
        description="a request that reached the far side but got no answer: unknown = the message fails as"
                    " 'outcome unknown' and is not sent again; retry = it is, at the risk of a duplicate",
    )


# -- plain words for pydantic's errors --------------------------------------------------------------

def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f", did you mean {close[0]!r}?" if close else ""


def _known_keys(model: type[BaseModel] | None, loc: Location) -> list[str]:
    """The keys the (nested) model at ``loc`` knows: the one an unknown key was found in."""
    for step in loc:
        info = model.model_fields.get(str(step)) if model is not None else None
        inner = info.annotation if info is not None else None
        inner = next((a for a in (inner, *get_args(inner)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if inner is None:
            break
        model = inner
    if model is None:
        return []
    if issubclass(model, SettingsModel):
        return [*model.ordered_fields(), *model.SLOT_KEYS]
    return list(model.model_fields)


def plain_words(error: ErrorDetails, model: type[BaseModel] | None = None) -> str:
    """One pydantic error in words an operator reads (no "Input should be a valid ...")."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        known = _known_keys(model, error["loc"][:-1])
        key = str(error["loc"][-1]) if error["loc"] else ""
        return f"unknown key{did_you_mean(key, known)} (known: {', '.join(known)})"
    if kind == "missing":
        return "is required"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false, got {_shown(value)}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be a whole number, got {_shown(value)}"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"must be a number, got {_shown(value)}"
    if kind in ("string_type", "model_type", "dict_type", "list_type"):
        wanted = {"string_type": "text", "model_type": "a mapping", "dict_type": "a mapping",
                  "list_type": "a list"}[kind]
        return f"must be {wanted}, got {_shown(value)}"
    if kind == "literal_error":
        return f"{_shown(value)} is not one of {ctx.get('expected', '').replace(chr(39), '')}"
    bounds = {"greater_than": "more than", "greater_than_equal": "at least", "less_than": "less than",
              "less_than_equal": "at most"}
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        shown = f"{limit:g}" if isinstance(limit, float) and math.isfinite(limit) else limit
        return f"must be {bounds[kind]} {shown}, got {_shown(value)}"
    message = str(error.get("msg", ""))
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
