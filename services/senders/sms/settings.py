"""The SMS channel's settings: one model for the config file, the admin, doctor and the sender.

Field titles are English msgids of the original manual's labels (the admin shows them translated:
msgd/locale/ru/LC_MESSAGES/django.po has "Адрес СМС шлюза", "Post параметры"...). What each request type sends is in
services/senders/sms/request.py, the presets in services/senders/sms/presets.py. Besides each
field's own type, :meth:`SmsSettings.problems` refuses a slot that could only fail message after
message: no gateway address, a request type without the settings it needs (Rostelecom JSON:
login, password, sender_name; Digital Direct JSON: sender_name and the API key; a parameter
string's ``%login%``, ``%password%``, ``%api_key%``, ``%token%``, ``%device%``, ``%md5%``: their
settings), and ``dedupes_message_id`` without ``%message_id%``. A slot with ``outbox: true``
sends nothing, so it may leave the gateway's required settings out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import phonenumbers
from annotated_types import Gt
from pydantic import AfterValidator, AllowInfNan, BeforeValidator, Field

from msgd import userpattern
from services.senders.model import HttpSettings, HttpUrl, Problem, Secret, Whole, no_bool
from services.senders.sms.presets import (
    DIGITAL_DIRECT_JSON,
    GET,
    JSON_TYPES,
    POST,
    effective_settings,
    normalize_preset,
    normalize_request_type,
)
from services.senders.sms.request import missing_settings, used_placeholders

DEFAULT_MAX_SEGMENTS = 10


def _preset(value: Any) -> Any:
    return normalize_preset(value) if isinstance(value, str) else value


def _request_type(value: Any) -> Any:
    return normalize_request_type(value) if isinstance(value, str) else value


def _region(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return value
    code = value.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not a region code such as RU, KZ, BY (ISO 3166-1 alpha-2)")
    return code


def _success_pattern(value: str) -> str:
    try:
        userpattern.compile_pattern(value)
    except userpattern.PatternError as exc:
        raise ValueError(f"{value!r} is not a regular expression msgd can run: {exc}") from None
    return value


PresetName = Annotated[Literal["smsc", "digital_direct", "prostor", "smspilot", "rostelecom", "semysms", "jasmin"],
                       BeforeValidator(_preset)]
RequestType = Annotated[Literal["post", "get", "rostelecom_json", "digital_direct_json"],
                        BeforeValidator(_request_type)]
ReplyFormat = Annotated[Literal["generic", "smsc", "digital_direct", "prostor", "smspilot", "rostelecom", "semysms",
                                "jasmin"],
                        BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v)]
_ENCODING_ALIASES = {"utf8": "utf-8", "windows-1251": "cp1251", "ucs2": "ucs2-hex", "ucs-2": "ucs2-hex",
                     "utf-16be-hex": "ucs2-hex", "gsm": "gsm7", "gsm-7": "gsm7", "gsm0338": "gsm7"}


def _encoding(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    return _ENCODING_ALIASES.get(text, text)


TextEncoding = Annotated[Literal["utf-8", "cp1251", "ucs2-hex", "gsm7"], BeforeValidator(_encoding)]
# Delivery reports can be asked for (the dlr stage) from these gateways' status queries.
POLLED_FORMATS = ("smsc", "smspilot", "digital_direct")


class SmsSettings(HttpSettings):
    """An SMS gateway over HTTP (the original's "Адрес СМС шлюза" and "Post параметры")."""

    DECIDING_KEYS = ("preset", "request_type", "reply_format", "params")

    preset: PresetName | None = Field(
        None, title="Gateway (preset)",
        description="a known gateway: fills url, request_type, params, strip_plus and reply_format; any"
                    " key given overrides it (smsc, digital_direct, prostor, smspilot, rostelecom, semysms,"
                    " jasmin)",
    )
    url: HttpUrl | None = Field(None, title="SMS gateway address",
                                description="the gateway's address, http:// or https:// (required without a preset)")
    request_type: RequestType | None = Field(
        None, title="Server request type",
        description="post (form body), get (query string), rostelecom_json or digital_direct_json; the"
                    " manual's POST, GET, Ростелеком JSON, Digital Direct JSON are accepted (default post)",
    )
    params: str | dict[str, Any] | None = Field(
        None, title="POST parameters",
        description="post/get: the parameter string, sent as typed; %sms% %text% %login% %password% %md5%"
                    " %api_key% %token% %device% %sender% %message_id% are replaced by URL-encoded values."
                    " digital_direct_json: a JSON object merged into the message",
    )
    strip_plus: bool | None = Field(None, title="Strip + from the number",
                                    description='send 79121234567 instead of +79121234567')
    login: Secret | None = Field(None, title="SMS server login",
                                 description="%login%, and HTTP basic auth together with the password")
    password: Secret | None = Field(None, title="SMS server password",
                                    description="%password%, and HTTP basic auth together with the login;"
                                                " Digital Direct: the API key")
    md5_key: Secret | None = Field(None, title="MD5 signature",
                                   description="%md5% is the lower-case hex MD5 of this (else of the password)")
    api_key: Secret | None = Field(None, title="API key", description="%api_key% (SMSPilot); else the password")
    token: Secret | None = Field(None, title="Token", description="%token% (SemySMS); else the password")
    device: str | None = Field(None, title="Device", description="%device%: the SemySMS phone's code")
    sender_name: str | None = Field(
        None, title="SMS sender name",
        description="%sender%; required by Rostelecom JSON and Digital Direct JSON (an empty %sender%"
                    " drops its key=%sender% pair)",
    )
    region: Annotated[str | None, BeforeValidator(_region)] = Field(
        None, title="Region", description="how numbers without a country code are read (default RU)",
    )
    reply_format: ReplyFormat | None = Field(
        None, title="Reply format",
        description="read answers as this gateway's (default: the preset's, or from the host name; generic)",
    )
    success_pattern: Annotated[str | None, AfterValidator(lambda v: v and _success_pattern(v))] = Field(
        None, title="Success pattern",
        description="generic gateways: a regular expression (RE2 syntax) an accepted answer matches",
    )
    rate_limit: Annotated[float, Gt(0), AllowInfNan(False), BeforeValidator(no_bool)] | None = Field(None, title="Rate limit",
                                     description="at most this many requests per second per sender process")
    max_segments: Whole = Field(DEFAULT_MAX_SEGMENTS, ge=1, title="Max SMS parts",
                              description="a longer text fails before any request (every part is billed)")
    encoding: TextEncoding | None = Field(
        None, title="Text encoding",
        description="how %text% is written: utf-8 (default), cp1251, ucs2-hex (UTF-16BE hex, SMPP UCS-2) or"
                    " gsm7 (GSM 03.38); a text the encoding cannot write fails before any request",
    )
    dlr_poll: bool = Field(
        False, title="Ask for delivery reports",
        description="the dlr stage (msgd run dlr) asks status_url for the delivery reports of sent messages"
                    " (smsc, smspilot, digital_direct)",
    )
    status_url: HttpUrl | None = Field(
        None, title="Status query address",
        description="the gateway's status query, for dlr_poll (the preset's by default)",
    )
    dlr_url: Secret | None = Field(
        None, title="Delivery report URL",
        description="msgd's URL for this slot's delivery reports (%dlr_url%): msgd dlr url SLOT makes and stores"
                    " it",
    )
    dedupes_message_id: bool = Field(
        False, title="Gateway drops repeated ids",
        description="the gateway drops a second request with the same %message_id%: a timeout is retried"
                    " safely (none of the presets' gateways does)",
    )

    balance_alert_below: Annotated[float, AllowInfNan(False), BeforeValidator(no_bool)] | None = Field(
        None, title="Alert when the balance is below",
        description="the alert MsgdGatewayBalanceLow fires when the gateway account's balance (msgd_gateway_balance,"
                    " in the gateway's unit: roubles, SemySMS messages) is below this; empty = no alert (an empty"
                    " account always alerts)",
    )

    def effective(self) -> dict[str, Any]:
        """The non-secret settings with the preset (named or implied by the request type) filled
        in under the given ones, and request_type and reply_format decided."""
        given, _ = self.storage()
        return effective_settings(given)

    def problems(self, outbox: bool) -> Iterator[Problem]:
        merged = self.effective()
        kind, template = merged["request_type"], merged.get("params")
        source = f"preset {self.preset}" if self.preset else f"request type {kind}"
        if kind in (POST, GET) and template is not None and not isinstance(template, str):
            yield Problem(("params",), f"must be text for request type {kind} (a parameter string)")
        if kind == DIGITAL_DIRECT_JSON and isinstance(template, str) and template.strip():
            try:
                extras = json.loads(template)
            except ValueError:
                extras = None
            if not isinstance(extras, dict):
                yield Problem(("params",), 'must be a JSON object such as {"ttl": 3600} for Digital Direct JSON')
        if self.dedupes_message_id and (kind in JSON_TYPES or not isinstance(template, str)
                                        or "message_id" not in used_placeholders(template)):
            yield Problem(("dedupes_message_id",), "needs %message_id% in params (the gateway's client message"
                                                   " id parameter, e.g. id=%message_id%); the JSON request"
                                                   " types cannot carry it")
        if kind not in (POST, GET) and (merged.get("encoding") or "utf-8") != "utf-8":
            yield Problem(("encoding",), f"must be utf-8 for request type {kind} (JSON is UTF-8)")
        if self.dlr_poll and merged.get("reply_format") not in POLLED_FORMATS:
            yield Problem(("dlr_poll",), f"msgd can ask only {', '.join(POLLED_FORMATS)} for delivery reports"
                                         f" (this gateway's format is {merged.get('reply_format')}); a gateway"
                                         " that calls back needs no polling: msgd dlr url SLOT")
        if outbox:
            return
        if self.dlr_poll and not merged.get("status_url"):
            yield Problem(("status_url",), "is required by dlr_poll: the gateway's status query address")
        if not merged.get("url"):
            yield Problem(("url",), "is required: the gateway's address (or choose a preset)")
        for name, why in missing_settings(kind, merged, self.secret_values()):
            yield Problem((name,), f"is required by {source} ({why})")
