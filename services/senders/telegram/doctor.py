"""``msgd doctor`` for a Telegram bot: its settings, the Bot API's address, and ``getMe`` with the
bot's token (nothing is sent to a subscriber)."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from msgd import safejson
from msgd.redact import register_secrets
from services.senders.base import PermanentError
from services.senders.http_errors import network_error
from services.senders.model import SettingsInvalid
from services.senders.net import excerpt, response_text
from services.senders.probe import (
    OK,
    PROBLEM,
    TIMEOUT,
    Finding,
    ProbeRequest,
    check_endpoint,
    invalid,
)
from services.senders.telegram.sender import bot_target, secrets_of
from services.senders.telegram.settings import TelegramSettings


def probe(req: ProbeRequest) -> list[Finding]:
    register_secrets(str(v) for k, v in req.values.items() if k == "token" and v)
    try:
        s = TelegramSettings.parse(req.values)
        register_secrets(secrets_of(s))
        t = bot_target(s, req.settings)
    except (SettingsInvalid, PermanentError) as exc:
        return [invalid(req.subject, exc)]
    register_secrets([t.token.split(":")[-1]])
    subject = req.subject
    found: list[Finding] = []
    if not t.proxy:  # through a proxy, only the proxy's view of the network matters
        parts = urlsplit(t.api_url)
        found = check_endpoint(subject, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80),
                               parts.scheme == "https", t.verify)
        if any(f.level == PROBLEM for f in found):
            return found
    try:
        with requests.Session() as session:
            session.trust_env = False  # as the sender: only the settings choose a proxy
            resp = session.post(t.url("getMe"), timeout=TIMEOUT, verify=t.verify, proxies=t.proxies)
    except (requests.RequestException, ValueError, UnicodeError) as exc:
        err = network_error(exc, "Bot API", t.api_url, TIMEOUT, t.proxy or "")
        return [*found, Finding(PROBLEM, subject, f"getMe failed: {err.reason}", "check api_url and proxy")]
    body = response_text(resp)
    try:
        data = safejson.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):  # not the Bot API (a web server's error page, a proxy's answer)
        shown = excerpt(body)
        return [*found, Finding(PROBLEM, subject, f"getMe answered HTTP {resp.status_code}, not the Bot API's"
                                f" JSON" + (f": {shown}" if shown else ""),
                                "api_url must be https://api.telegram.org or a local Bot API server's address")]
    if resp.status_code == 401 or not data.get("ok"):
        return [*found, Finding(PROBLEM, subject, f"Telegram refuses the token ({resp.status_code}"
                                f" {excerpt(str(data.get('description', '')))})",
                                "the token is wrong or revoked: get it again from @BotFather")]
    bot = (data.get("result") or {}).get("username", "?")
    return [*found, Finding(OK, subject, f"bot @{bot} answers getMe; subscribers must press Start in"
                            f" @{bot} first, or messages fail with \"chat not found\"")]
