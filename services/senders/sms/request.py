"""The HTTP request an SMS gateway gets (the original's "Адрес СМС шлюза" + "Post параметры").

Request types (``request_type``; the manual's names "POST", "GET",
"Ростелеком JSON", "Digital Direct JSON" are accepted in any case):

``post`` / ``get``
    The operator's parameter string is used literally, exactly as typed,
    except for the placeholders below.  ``post`` sends it as an
    ``application/x-www-form-urlencoded`` body, ``get`` appends it to the URL
    as the query.  Every placeholder value is percent-encoded UTF-8 with
    ``urllib.parse.quote(v, safe="")``: a space becomes ``%20`` and ``+``
    becomes ``%2B``.  ``%20`` is read as a space both by form decoders (PHP,
    Django) and by plain percent-decoding, whereas ``quote_plus``'s ``+`` is a
    space only to form decoders, so ``quote`` is the one both kinds of gateway
    read the same.  Nothing else in the string is decoded or re-encoded, so
    strings such as ``phones=%2B%sms%`` keep working.  The placeholders are
    replaced in one pass, so a message text containing ``%password%`` stays
    text.

    =============  ==============================================================
    placeholder    value
    =============  ==============================================================
    ``%sms%``      the phone number (E.164, without "+" when ``strip_plus``)
    ``%text%``     the message
    ``%login%``    the ``login`` setting
    ``%password%`` the ``password`` setting
    ``%md5%``      MD5 signature, see below
    ``%api_key%``  the ``api_key`` setting, else ``password``
    ``%token%``    the ``token`` setting, else ``password``
    ``%device%``   the ``device`` setting (SemySMS)
    ``%sender%``   the ``sender_name`` setting; optional: when it is empty a
                   ``key=%sender%`` pair is left out of the string
    ``%message_id%`` msgd's message id (a UUID, 36 characters), the same for
                   every attempt of one message
    ``%text_utf8%``, ``%text_cp1251%``, ``%text_ucs2%``, ``%text_gsm7%``
                   the text in that encoding, whatever ``encoding`` says
                   (services/senders/sms/encoding.py; ``%text_ucs2%`` is UTF-16BE hex)
    ``%smpp_coding%`` SMPP ``data_coding`` for this text: ``0`` when it fits the GSM
                   03.38 alphabet, else ``8`` (UCS-2)
    ``%text_smpp%`` the text as hex in that coding: GSM 03.38 septets or UTF-16BE
                   (Jasmin's ``hex-content``)
    ``%dlr_url%``  the slot's delivery-report URL (the ``dlr_url`` secret that
                   ``msgd dlr url`` stores); optional like ``%sender%``
    ``%dlr%``      ``yes`` when ``dlr_url`` is set, else ``no`` (Jasmin's ``dlr``)
    =============  ==============================================================

    ``%text%`` is written in the gateway's ``encoding`` (default UTF-8; ``cp1251``,
    ``ucs2-hex``, ``gsm7``): a text that encoding cannot write fails as a content
    problem before any request, instead of arriving as "?????" while the log says sent.

    ``%message_id%`` lets the gateway's account show msgd's id (smsc.ru:
    ``id=%message_id%``; its ``id`` is "assigned by the client ... not
    necessarily unique", a string of up to 40 Latin letters, digits and
    ``.-_``, https://smscentre.com/api/soap/send, the same API as
    https://smsc.ru/api/http/send/sms).  A retry with the same id is safe only
    where the gateway *drops* a second request with an id it has seen: none of
    the six gateways of the presets documents that (smsc.ru's ``id`` may
    repeat; SMSPilot's API-2 ``id`` numbers the messages of one packet,
    https://smspilot.ru/apikey.php?tab=api2; the send APIs of Prostor SMS,
    Digital Direct, Rostelecom and SemySMS name no such id).  For a gateway
    that does, set ``dedupes_message_id: true`` and carry ``%message_id%`` in
    ``params``: a request that timed out after it was sent is then retried
    whatever ``on_timeout`` says (services/senders/model.py).

    A credential placeholder whose setting is empty fails the message at once,
    naming the setting.  HTTP basic auth is sent only when both ``login`` and
    ``password`` are set *and* neither travels in the parameter string (a
    preset that sends them as ``login=%login%&psw=%password%`` does not repeat
    them in an Authorization header).

``rostelecom_json`` (https://sms.rt.ru/api/v2/send_message)
    ``POST`` with the JSON body ``{"msisdn": "<number>", "shortcode":
    "<sender_name>", "message_text": "<text>"}`` and HTTP basic auth with
    ``login``/``password`` (both required, as is ``sender_name``).  As the
    manual says, "Post параметры" and the MD5 signature are ignored.

``digital_direct_json`` (https://direct.i-dgtl.ru/api/v1/message)
    ``POST`` of a JSON list with one message: ``[{"channelType": "SMS",
    "senderName": "<sender_name>", "destination": "<number>", "content":
    "<text>"}]``, with the JSON object in "Post параметры" (e.g. ``{"ttl":
    3600, "tags": ["billing"]}``) merged into the message (it may override
    ``channelType`` and ``senderName``, never the number or the text).
    Authorization: the API key the manual puts in "Пароль сервера sms"
    (``password``, or ``api_key``) as ``Authorization: Basic <key>`` — the key
    issued in the Digital Direct account is already the base64 token their
    documentation shows after "Basic".  A key written as ``Bearer ...`` or
    ``Basic ...`` is sent as written; ``id:secret`` is base64-encoded; with
    ``login`` and ``password`` both set, standard basic auth is used.

MD5 signature ("MD5 подпись", setting ``md5_key``): smsc.ru and gateways
built on the same API accept the lower-case hex MD5 of the account password
instead of the password (``psw=%md5%``), so the password itself never
travels.  ``%md5%`` is the lower-case hex MD5 of the UTF-8 ``md5_key`` when
it is set, else of ``password``.  The digest is treated as a secret too (it
authenticates like the password).  The JSON types ignore it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_plus

from msgd.redact import is_secret_key
from services.senders.base import PermanentError
from services.senders.sms.encoding import encoded_text, text_placeholders
from services.senders.sms.presets import DIGITAL_DIRECT_JSON, GET, POST, ROSTELECOM_JSON

PLACEHOLDERS = ("sms", "text", "login", "password", "md5", "api_key", "token", "device", "sender", "message_id",
                "text_utf8", "text_cp1251", "text_ucs2", "text_gsm7", "smpp_coding", "text_smpp", "dlr_url", "dlr")
OPTIONAL_PLACEHOLDERS = frozenset({"sender", "dlr_url"})
_PLACEHOLDER_RE = re.compile(r"%(" + "|".join(PLACEHOLDERS) + r")%")
# What each credential placeholder needs, in the words of the settings.
_NEEDS = {
    "login": "login",
    "password": "password",
    "md5": "md5_key or password",
    "api_key": "api_key (or password)",
    "token": "token (or password)",
    "device": "device",
}

def fill_params(template: str, phone: str, text: str, values: Mapping[str, str] | None = None,
                encoded: Mapping[str, str] | None = None) -> str:
    """Replace the placeholders with percent-encoded UTF-8 in one pass; keep the rest literally.
    ``encoded`` values are ready for the string (a text in the gateway's encoding) and go in as
    they are.

    An empty optional placeholder (``%sender%``) removes its whole ``key=%sender%`` pair.
    """
    ready = dict(encoded or {})
    filled = {"sms": phone, "text": text, **(values or {}), **ready}
    kept = [pair for pair, optional in _pairs(template) if not optional or filled.get(optional)]
    return _PLACEHOLDER_RE.sub(
        lambda m: (ready[m[1]] if m[1] in ready else quote(filled[m[1]], safe="")) if m[1] in filled else m[0],
        "&".join(kept),
    )


@functools.lru_cache(maxsize=256)
def _pairs(template: str) -> tuple[tuple[str, str], ...]:
    """The ``&``-separated pairs of a parameter string, each with the optional placeholder that is
    its whole value (``sender=%sender%``: the pair goes when the value is empty), else ""; worked
    out once per settings' string, not per message."""
    return tuple((pair, next((name for name in OPTIONAL_PLACEHOLDERS if pair.partition("=")[2] == f"%{name}%"), ""))
                 for pair in template.split("&"))


def used_placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER_RE.findall(template))


def md5_hex(value: str) -> str:
    return hashlib.md5(value.encode("utf-8"), usedforsecurity=False).hexdigest()


def join_query(url: str, query: str) -> str:
    if not query:
        return url
    if url.endswith(("?", "&")):
        return url + query
    return f"{url}{'&' if '?' in url else '?'}{query}"


def params_secrets(template: str) -> list[str]:
    """Values of secret-looking keys (psw, password, apikey, token...) in the parameter string."""
    found: list[str] = []
    for pair in template.split("&"):
        key, sep, value = pair.partition("=")
        if not sep or not value or not is_secret_key(key.strip()) or _PLACEHOLDER_RE.fullmatch(value):
            continue
        found.append(value)
        decoded = unquote_plus(value)
        found += [decoded, decoded.strip("'\""), quote(decoded, safe="")]
    return found


@dataclass
class HttpRequest:
    """One request to the gateway, ready for ``requests.Session.request``."""

    method: str
    url: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None


def _setting(key: str, params: dict[str, Any], secrets: dict[str, Any]) -> str:
    value = secrets.get(key)
    if value in (None, ""):
        value = params.get(key)
    return "" if value is None else str(value)


def missing_settings(kind: str, params: dict[str, Any], secrets: dict[str, Any]) -> list[tuple[str, str]]:
    """(setting, what needs it) for every setting a request of ``kind`` needs and lacks: the JSON
    types their fields, ``post``/``get`` the credentials their parameter string names (``%login%``
    needs login, ``%api_key%`` api_key or password...). ``params`` are the effective settings
    (preset filled in), ``secrets`` the secret ones. The settings model refuses a slot with any
    (services/senders/sms/settings.py), so a loaded setting always builds its request."""
    login, password = _setting("login", params, secrets), _setting("password", params, secrets)
    sender = str(params.get("sender_name") or "").strip()
    if kind == ROSTELECOM_JSON:
        why = "the Rostelecom JSON request"
        return [(k, why) for k, v in (("login", login), ("password", password), ("sender_name", sender)) if not v]
    if kind == DIGITAL_DIRECT_JSON:
        missing = []
        try:
            extras = _json_extras(params.get("params"))
        except PermanentError:
            extras = {}
        if not sender and not str(extras.get("senderName") or "").strip():
            missing.append(("sender_name", "the Digital Direct JSON request: the sender name agreed with"
                                           " Digital Direct"))
        if not (password or _setting("api_key", params, secrets)):
            missing.append(("password", "the Digital Direct JSON request: the API key from the Digital Direct"
                                        " account, or api_key"))
        return missing
    template = params.get("params")
    if not isinstance(template, str):
        return []
    values = _values(params, secrets, "")
    setting = {"login": "login", "password": "password", "md5": "password", "api_key": "api_key",
               "token": "token", "device": "device"}
    return [(setting[name], f"%{name}% in params: {_NEEDS[name]}")
            for name in sorted(used_placeholders(template) & _NEEDS.keys()) if not values[name]]


def _values(params: dict[str, Any], secrets: dict[str, Any], message_id: str) -> dict[str, str]:
    """The placeholders' values from the settings (``md5`` computed only when it is used)."""
    password = _setting("password", params, secrets)
    api_key, token = _setting("api_key", params, secrets), _setting("token", params, secrets)
    values = {
        "login": _setting("login", params, secrets),
        "password": password,
        "md5": "",
        "api_key": api_key or password,
        "token": token or password,
        "device": _setting("device", params, secrets),
        "sender": str(params.get("sender_name") or "").strip(),
        "message_id": message_id,
        "dlr_url": _setting("dlr_url", params, secrets),
    }
    values["dlr"] = "yes" if values["dlr_url"] else "no"
    template = params.get("params")
    if isinstance(template, str) and "md5" in used_placeholders(template):
        source = _setting("md5_key", params, secrets) or password
        values["md5"] = md5_hex(source) if source else ""
    return values


@dataclass(frozen=True)
class RequestPlan:
    """What one slot's settings decide about its requests, worked out once (``plan_request``):
    the checks, the credentials' placeholder values (``%md5%`` hashed once), the placeholders the
    parameter string uses and the basic auth; ``build`` adds one message."""

    kind: str
    params: dict[str, Any]
    secrets: dict[str, Any]
    template: str = ""
    values: dict[str, str] = field(default_factory=dict)
    used: frozenset[str] = frozenset()
    auth: tuple[str, str] | None = None
    encoding: str = "utf-8"

    def build(self, url: str, phone: str, text: str, message_id: str = "") -> HttpRequest:
        """The request for one message (``text`` to ``phone``) to ``url``."""
        if self.kind in (ROSTELECOM_JSON, DIGITAL_DIRECT_JSON):
            return _json_kind(self.kind, url, phone, text, self.params, self.secrets)
        values = {**self.values, "message_id": message_id}
        encoded = text_placeholders(text, self.used)
        if "text" in self.used:
            encoded["text"] = encoded_text(text, self.encoding)
        payload = fill_params(self.template, phone, text, values, encoded)
        if self.kind == POST:
            return HttpRequest("POST", url, payload.encode("utf-8"),
                               {"Content-Type": "application/x-www-form-urlencoded"}, self.auth)
        return HttpRequest("GET", join_query(url, payload), None, {}, self.auth)


def plan_request(kind: str, params: dict[str, Any], secrets: dict[str, Any]) -> RequestPlan:
    """The ``RequestPlan`` of a slot: ``kind`` (post | get | rostelecom_json |
    digital_direct_json), its effective settings and secrets; PermanentError naming the settings
    that are missing (:func:`missing_settings`) or unusable."""
    missing = missing_settings(kind, params, secrets)
    if missing:
        names = ", ".join(dict.fromkeys(name for name, _ in missing))
        raise PermanentError(f"the SMS settings lack {names}, needed by {missing[0][1]} — set it in the SMS"
                             " settings")
    if kind in (ROSTELECOM_JSON, DIGITAL_DIRECT_JSON):
        return RequestPlan(kind, params, secrets)
    template = params.get("params") or ""
    if not isinstance(template, str):
        raise PermanentError("params (\"Post параметры\") must be text for the POST and GET request types")
    assert kind in (POST, GET)
    values = _values(params, secrets, "")
    used = used_placeholders(template)
    # Credentials already in the parameter string are not repeated as basic auth.
    login, password = _setting("login", params, secrets), _setting("password", params, secrets)
    api_key, token = _setting("api_key", params, secrets), _setting("token", params, secrets)
    in_params = bool(used & {"login", "password", "md5"}) or ("api_key" in used and not api_key) \
        or ("token" in used and not token)
    auth = (login, password) if login and password and not in_params else None
    return RequestPlan(kind, params, secrets, template, values, frozenset(used), auth,
                       str(params.get("encoding") or "utf-8"))


def build_request(kind: str, url: str, phone: str, text: str, params: dict[str, Any],
                  secrets: dict[str, Any], message_id: str = "") -> HttpRequest:
    """The request of ``kind`` (post | get | rostelecom_json | digital_direct_json) to ``url``;
    PermanentError naming the settings that are missing (:func:`missing_settings`) or unusable.
    A sender keeps the plan per slot (``plan_request``) and builds each message from it."""
    return plan_request(kind, params, secrets).build(url, phone, text, message_id)


def _json_kind(kind: str, url: str, phone: str, text: str, params: dict[str, Any],
               secrets: dict[str, Any]) -> HttpRequest:
    login, password = _setting("login", params, secrets), _setting("password", params, secrets)
    sender = str(params.get("sender_name") or "").strip()
    if kind == ROSTELECOM_JSON:
        body = {"msisdn": phone, "shortcode": sender, "message_text": text}
        return _json_request(url, body, auth=(login, password))
    item: dict[str, Any] = {"channelType": "SMS", "senderName": sender}
    item.update(_json_extras(params.get("params")))
    item["destination"], item["content"] = phone, text
    dlr_url = _setting("dlr_url", params, secrets)
    if dlr_url:  # Digital Direct calls it for the message's final status (its "delivered" event)
        item.setdefault("callbackUrl", dlr_url)
    api_key = _setting("api_key", params, secrets)
    headers: dict[str, str] = {}
    auth = None
    if login and password and not api_key:
        auth = (login, password)
    else:
        headers["Authorization"] = _dd_authorization(api_key or password)
    return _json_request(url, [item], auth=auth, headers=headers)


def _json_extras(raw: Any) -> dict[str, Any]:
    if raw in (None, ""):
        return {}
    if isinstance(raw, dict):
        return dict(raw)
    try:
        data = json.loads(str(raw))
    except ValueError as exc:
        raise PermanentError(
            f"params (\"Post параметры\") for Digital Direct JSON must be a JSON object such as "
            f"{{\"ttl\": 3600}}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise PermanentError("params (\"Post параметры\") for Digital Direct JSON must be a JSON object")
    return data


def _dd_authorization(key: str) -> str:
    key = key.strip()
    if key.lower().startswith(("basic ", "bearer ")):
        return key
    if ":" in key:
        return "Basic " + base64.b64encode(key.encode("utf-8")).decode("ascii")
    return f"Basic {key}"


def _json_request(url: str, body: Any, auth: tuple[str, str] | None = None,
                  headers: dict[str, str] | None = None) -> HttpRequest:
    return HttpRequest(
        "POST", url, json.dumps(body, ensure_ascii=False).encode("utf-8"),
        {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json", **(headers or {})},
        auth,
    )
