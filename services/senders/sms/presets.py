"""Gateway presets: the manual's integration examples as ready settings.

``preset: smsc`` in an operator's SMS settings fills ``url``,
``request_type``, ``params``, ``strip_plus`` and ``reply_format``; the
operator fills in only the credentials and the sender name.  Any key given
explicitly overrides the preset's value.  Credentials reach the gateway
through placeholders in ``params`` (see services/senders/sms/sender.py):

===============  ==========================================================  =========================
preset           gateway (request type)                                      credentials to fill in
===============  ==========================================================  =========================
smsc             https://smsc.ru/sys/send.php (post, fmt=3 JSON replies)     login, password
digital_direct   https://direct.i-dgtl.ru/api/v1/message (Digital Direct      password (the API key),
                 JSON)                                                       sender_name
prostor          http://gate.prostor-sms.ru/send/ (post)                     login, password
smspilot         https://smspilot.ru/api.php (post, format=json)             api_key (or password)
rostelecom       https://sms.rt.ru/api/v2/send_message (Rostelecom JSON)      login, password,
                                                                             sender_name
semysms          https://semysms.net/api/3/sms.php (post)                    token (or password),
                                                                             device
jasmin           http://127.0.0.1:1401/send (post; Jasmin SMS gateway's       login, password (a Jasmin
                 HTTP API: GSM or UCS-2 hex content, DLRs to msgd)           user); url: your Jasmin
===============  ==========================================================  =========================

Jasmin (https://docs.jasminsms.com/en/latest/apis/ja-http/): ``content`` is turned into GSM 03.38
with "?" for every Cyrillic letter, and ``coding=8`` with ``content`` passes UTF-8 bytes on as if
they were UCS-2, so the preset sends ``hex-content`` with the coding picked per text:
``coding=%smpp_coding%&hex-content=%text_smpp%`` is GSM 03.38 (``coding=0``, 160 characters a
part) for a text the GSM alphabet can write and UTF-16BE (``coding=8``, UCS-2) for any other, which
arrives right on every handset (checked against a real Jasmin: tests/test_jasmin_e2e.py). It asks for level-2 delivery reports by POST
to ``%dlr_url%`` (the slot's URL, which ``msgd dlr url`` makes and stores), reads ``Success
"<id>"`` as accepted with Jasmin's message id, and ``Error "..."`` by its words.

The status query (``status_url``, for ``dlr_poll: true``): smsc.ru's ``status.php``, SMSPilot's
``api.php?check=``, Digital Direct's ``GET /api/v1/message/<uuid>`` (services/senders/sms/dlr.py).

``sender_name`` is optional where the gateway has a default (smsc, prostor,
smspilot): an empty ``%sender%`` drops its ``key=%sender%`` pair.

Choosing a vendor JSON request type without a preset implies that vendor's
preset (its address when ``url`` is empty, its reply format, ``strip_plus``).
For ``post``/``get`` without a preset the reply format is taken from the
gateway's host name when it is one of these gateways (a hand-written smsc.ru
parameter string still gets smsc.ru's answers read), else ``generic``.

:func:`preset_settings` is what a settings form's preset picker offers;
:data:`PRESETS` also says which credentials each one needs.  Settings that
cannot be used (an unknown preset, request type or reply format) raise
``ValueError`` whose text is meant for the operator.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlsplit

from services.senders.spec import Preset

POST, GET, ROSTELECOM_JSON, DIGITAL_DIRECT_JSON = "post", "get", "rostelecom_json", "digital_direct_json"
REQUEST_TYPES = (POST, GET, ROSTELECOM_JSON, DIGITAL_DIRECT_JSON)
JSON_TYPES = (ROSTELECOM_JSON, DIGITAL_DIRECT_JSON)
REPLY_FORMATS = ("generic", "smsc", "digital_direct", "prostor", "smspilot", "rostelecom", "semysms", "jasmin")

# The manual's names ("POST", "GET", "Ростелеком JSON", "Digital Direct JSON") and obvious variants.
_REQUEST_TYPE_ALIASES = {
    "post": POST,
    "form": POST,
    "get": GET,
    "query": GET,
    "rostelecom_json": ROSTELECOM_JSON,
    "rostelecom": ROSTELECOM_JSON,
    "ростелеком_json": ROSTELECOM_JSON,
    "ростелеком": ROSTELECOM_JSON,
    "rt_json": ROSTELECOM_JSON,
    "digital_direct_json": DIGITAL_DIRECT_JSON,
    "digital_direct": DIGITAL_DIRECT_JSON,
    "digitaldirect_json": DIGITAL_DIRECT_JSON,
    "digitaldirect": DIGITAL_DIRECT_JSON,
    "dd_json": DIGITAL_DIRECT_JSON,
}


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "smsc",
            "SMSC.RU",
            {
                "url": "https://smsc.ru/sys/send.php",
                "request_type": POST,
                "params": "charset=utf-8&fmt=3&login=%login%&psw=%password%"
                "&phones=%sms%&mes=%text%&sender=%sender%",
                "strip_plus": True,
                "reply_format": "smsc",
                "status_url": "https://smsc.ru/sys/status.php",
            },
            credentials=("login", "password"),
            optional=("sender_name",),
            note="psw=%md5% sends the MD5 of the password instead of the password",
        ),
        Preset(
            "digital_direct",
            "Digital Direct",
            {
                "url": "https://direct.i-dgtl.ru/api/v1/message",
                "request_type": DIGITAL_DIRECT_JSON,
                "params": "",
                "strip_plus": True,
                "reply_format": "digital_direct",
                "status_url": "https://direct.i-dgtl.ru/api/v1/message",
            },
            credentials=("password", "sender_name"),
            note='password = the API key from the Digital Direct account; params = extra JSON, e.g. {"ttl": 3600}',
        ),
        Preset(
            "prostor",
            "Простор СМС",
            {
                "url": "http://gate.prostor-sms.ru/send/",
                "request_type": POST,
                "params": "login=%login%&password=%password%&phone=%sms%&text=%text%&sender=%sender%",
                "strip_plus": True,
                "reply_format": "prostor",
            },
            credentials=("login", "password"),
            optional=("sender_name",),
        ),
        Preset(
            "smspilot",
            "SMSPILOT.RU",
            {
                "url": "https://smspilot.ru/api.php",
                "request_type": POST,
                "params": "send=%text%&to=%sms%&apikey=%api_key%&from=%sender%&format=json",
                "strip_plus": True,
                "reply_format": "smspilot",
                "status_url": "https://smspilot.ru/api.php",
            },
            credentials=("api_key",),
            optional=("sender_name",),
            note="api_key = the key from Настройки -> API (the password field is used when api_key is empty)",
        ),
        Preset(
            "rostelecom",
            "Ростелеком СМС",
            {
                "url": "https://sms.rt.ru/api/v2/send_message",
                "request_type": ROSTELECOM_JSON,
                "params": "",
                "strip_plus": True,
                "reply_format": "rostelecom",
            },
            credentials=("login", "password", "sender_name"),
        ),
        Preset(
            "semysms",
            "SemySMS",
            {
                "url": "https://semysms.net/api/3/sms.php",
                "request_type": POST,
                "params": "token=%token%&device=%device%&phone=%2B%sms%&msg=%text%",
                "strip_plus": True,
                "reply_format": "semysms",
            },
            credentials=("token", "device"),
            note="token = the API token (the password field is used when token is empty); device = the phone's code",
        ),
        Preset(
            "jasmin",
            "Jasmin SMS Gateway",
            {
                "url": "http://127.0.0.1:1401/send",
                "request_type": POST,
                "params": "username=%login%&password=%password%&to=%sms%&from=%sender%&coding=%smpp_coding%"
                "&hex-content=%text_smpp%&dlr=%dlr%&dlr-url=%dlr_url%&dlr-level=2&dlr-method=POST",
                "strip_plus": True,
                "reply_format": "jasmin",
            },
            credentials=("login", "password"),
            optional=("sender_name",),
            note="url = your Jasmin's HTTP API (/send, port 1401 by default); login/password = a Jasmin user;"
                 " run `msgd dlr url SLOT` once for its delivery reports",
        ),
    )
}

_PRESET_ALIASES = {
    "smscru": "smsc",
    "smsc": "smsc",
    "digitaldirect": "digital_direct",
    "idgtl": "digital_direct",
    "prostor": "prostor",
    "prostorsms": "prostor",
    "простор": "prostor",
    "простор смс": "prostor",
    "smspilot": "smspilot",
    "smspilotru": "smspilot",
    "rostelecom": "rostelecom",
    "ростелеком": "rostelecom",
    "ростелекомсмс": "rostelecom",
    "rt": "rostelecom",
    "semysms": "semysms",
    "semysmsnet": "semysms",
    "jasmin": "jasmin",
    "jasminsms": "jasmin",
}

# Host names whose answers a format reads (also smsc.ru's sister sites).
_HOST_FORMATS = {
    "smsc.ru": "smsc",
    "smsc.kz": "smsc",
    "smsc.ua": "smsc",
    "smscentre.com": "smsc",
    "i-dgtl.ru": "digital_direct",
    "prostor-sms.ru": "prostor",
    "smspilot.ru": "smspilot",
    "sms.rt.ru": "rostelecom",
    "semysms.net": "semysms",
}


def _key(name: str) -> str:
    return re.sub(r"[\s_.\-]+", "", name.strip().lower())


def preset_names() -> list[str]:
    return list(PRESETS)


def normalize_preset(name: Any) -> str | None:
    """The preset's canonical name ("SMSC.RU" -> "smsc"), None when empty; ValueError if unknown."""
    if name is None or not str(name).strip():
        return None
    text = str(name).strip().lower()
    found = text if text in PRESETS else _PRESET_ALIASES.get(text) or _PRESET_ALIASES.get(_key(text))
    if not found:
        raise ValueError(f"unknown SMS preset {name!r} (known: {', '.join(PRESETS)})")
    return found


def preset_settings(name: str) -> dict[str, Any]:
    """The settings a preset fills in (a fresh copy): url, request_type, params, strip_plus, reply_format."""
    canonical = normalize_preset(name)
    if canonical is None:
        raise ValueError("no SMS preset given")
    return copy.deepcopy(dict(PRESETS[canonical].settings))


def normalize_request_type(value: Any) -> str:
    """post | get | rostelecom_json | digital_direct_json from any of the manual's spellings."""
    text = str(value if value is not None else "").strip().lower()
    if not text:
        return POST
    found = _REQUEST_TYPE_ALIASES.get(re.sub(r"[\s\-]+", "_", text))
    if found is None:
        raise ValueError(
            f"request type {value!r} is not one of POST, GET, Ростелеком JSON (rostelecom_json), "
            "Digital Direct JSON (digital_direct_json)"
        )
    return found


def format_for_url(url: str) -> str:
    """The reply format of a known gateway host, else "generic"."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return "generic"
    for domain, fmt in _HOST_FORMATS.items():
        if host == domain or host.endswith("." + domain):
            return fmt
    return "generic"


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def effective_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The channel's settings with its preset (named or implied) filled in under explicit keys.

    Raises ValueError for an unknown preset, request type or reply format.
    """
    explicit = {k: v for k, v in params.items() if _given(v)}
    name = normalize_preset(explicit.get("preset"))
    kind = normalize_request_type(explicit["request_type"]) if "request_type" in explicit else None
    if name is None and kind == ROSTELECOM_JSON:
        name = "rostelecom"
    elif name is None and kind == DIGITAL_DIRECT_JSON:
        name = "digital_direct"
    merged: dict[str, Any] = preset_settings(name) if name else {}
    merged.update(explicit)
    merged["request_type"] = kind or normalize_request_type(merged.get("request_type"))
    if name:
        merged["preset"] = name
    fmt = str(merged.get("reply_format") or "").strip().lower()
    if not fmt:
        fmt = format_for_url(str(merged.get("url") or ""))
    if fmt not in REPLY_FORMATS:
        raise ValueError(f"reply_format {fmt!r} is not one of {', '.join(REPLY_FORMATS)}")
    merged["reply_format"] = fmt
    return merged
