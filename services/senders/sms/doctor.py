"""``msgd doctor`` for an SMS gateway: its settings as the sender reads them, its address (DNS,
TCP, TLS certificate), then -- for smsc.ru, SMSPilot, Prostor, Digital Direct and SemySMS -- a
read-only account query (services/senders/sms/balance.py) that checks the credentials and prints
the balance where the gateway reports one. Nothing is sent to a subscriber."""

from __future__ import annotations

from urllib.parse import quote

import requests

from msgd.redact import register_secrets
from services.senders.base import PermanentError
from services.senders.http_errors import network_error
from services.senders.model import SettingsInvalid
from services.senders.net import http_options
from services.senders.probe import (
    OK,
    PROBLEM,
    SETTINGS_FIX,
    WARN,
    Finding,
    ProbeRequest,
    check_http,
    invalid,
)
from services.senders.sms.balance import (
    CREDENTIALS,
    FUNDS,
    AccountCheck,
    account_request,
    query_account,
    supported,
)
from services.senders.sms.request import md5_hex
from services.senders.sms.settings import SmsSettings

NO_QUERY = "this gateway type has no read-only call msgd knows"


def shown_balance(check: AccountCheck) -> str:
    """"balance 123.45 RUB" (or "" when the gateway reports none)."""
    if check.balance is None:
        return ""
    return f"balance {check.balance:g}" + (f" {check.unit}" if check.unit else "")


def account_findings(subject: str, s: SmsSettings, check: AccountCheck) -> list[Finding]:
    """Plain words for an account query's answer (and the slot's ``balance_alert_below``)."""
    fmt = s.effective().get("reply_format")
    if check.accepted:
        balance = shown_balance(check)
        found = [Finding(OK, subject, f"{fmt} accepts the credentials" + (f"; {balance}" if balance else
                                                                            " (its API reports no balance)"))]
        limit = s.balance_alert_below
        if check.empty:
            found.append(Finding(PROBLEM, subject, f"the {fmt} account is empty ({balance}): every SMS will fail",
                                 "top up the gateway account"))
        elif limit is not None and check.balance is not None and check.balance < limit:
            found.append(Finding(WARN, subject, f"{balance} is below balance_alert_below ({limit:g})",
                                 "top up the gateway account soon"))
        return found
    if check.problem == CREDENTIALS:
        return [Finding(PROBLEM, subject, f"{fmt} refuses the credentials: {check.words}",
                        "check login, password, api_key or token against the gateway account; " + SETTINGS_FIX)]
    if check.problem == FUNDS:
        return [Finding(PROBLEM, subject, f"the {fmt} account is empty: {check.words}", "top up the gateway account")]
    return [Finding(PROBLEM, subject, f"the {fmt} account query failed: {check.words}",
                    "the gateway answered something msgd cannot read as its account query: check url (and the"
                    " gateway's status page)")]


def _register(s: SmsSettings) -> None:
    secrets = [v for k, v in s.secret_values().items() if k != "login"]
    register_secrets([*secrets, *(md5_hex(v) for v in secrets), *(quote(v, safe="") for v in secrets)])


def probe(req: ProbeRequest) -> list[Finding]:
    try:
        s = SmsSettings.parse(req.values)
        timeout, verify = http_options(s, req.settings.http_timeout, "SMS")
    except (SettingsInvalid, PermanentError) as exc:
        return [invalid(req.subject, exc)]
    _register(s)
    merged = s.effective()
    url, fmt = str(merged["url"]), str(merged.get("reply_format"))
    found = check_http(req.subject, url, verify, unchecked="" if supported(fmt) else NO_QUERY)
    if any(f.level == PROBLEM for f in found) or not supported(fmt):
        return found
    try:
        request = account_request(s)
    except PermanentError as exc:
        return [*found, invalid(req.subject, exc)]
    if request is None:
        return [*found, Finding(WARN, req.subject, f"credentials not checked: the {fmt} account query needs the"
                                " credentials as settings (login/password, api_key or token), not written inside params")]
    try:
        with requests.Session() as session:
            session.trust_env = False
            check = query_account(s, session, min(timeout, 10.0), verify)
    except (requests.RequestException, ValueError, UnicodeError) as exc:
        err = network_error(exc, "SMS gateway", url, timeout)
        return [*found, Finding(PROBLEM, req.subject, f"the account query failed: {err.reason}")]
    assert check is not None
    return [*found, *account_findings(req.subject, s, check)]
