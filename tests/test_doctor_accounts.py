"""``msgd doctor``'s account query (issue 12.5) against local servers that play each gateway's
account API: good credentials (the balance printed), bad credentials (reported as such), and a
gateway that answers an HTML error page (reported by HTTP status and an excerpt, never as a
parser's exception); Telegram's getMe answered by a non-JSON 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from msgd import doctor
from services.senders.probe import ProbeRequest
from services.senders.sms.balance import read_account
from services.senders.sms.doctor import probe as sms_probe
from services.senders.telegram.doctor import probe as telegram_probe
from tests.test_sms_gateways import Account, Answer, FakeGateway, Hit, make_gateway  # noqa: F401 - fixture

NIL = "00000000-0000-0000-0000-000000000000"


def account_api(acc: Account) -> Callable[[Hit], Answer]:
    """The gateways' read-only account queries, in their formats (services/senders/sms/balance.py)."""

    def respond(hit: Hit) -> Answer:
        if acc.mode == "down":
            return 502, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", {}
        if hit.path == "/sys/balance.php":  # smsc.ru
            form = hit.form
            if hit.method != "POST" or form.get("fmt") != "3":
                return 400, "bad request", {}
            if (form.get("login"), form.get("psw")) != (acc.login, acc.password):
                return 200, {"error": "authorise error", "error_code": 2}, {}
            return 200, {"balance": f"{acc.balance:.2f}", "currency": "RUB"}, {}
        if hit.path == "/api.php":  # SMSPilot
            if hit.query.get("balance") != "rur" or hit.query.get("format") != "json":
                return 400, "bad request", {}
            if hit.query.get("apikey") != acc.key:
                return 200, {"error": {"code": "101", "description": "APIKEY NOT FOUND"}}, {}
            return 200, {"balance": f"{acc.balance:.2f}"}, {}
        if hit.path == "/credits/":  # Prostor
            if hit.basic() != (acc.login, acc.password):
                return 401, "authorization failed", {}
            return 200, f"credits={acc.balance:.2f}", {}
        if hit.path == f"/api/v1/message/{NIL}":  # Digital Direct
            if hit.headers.get("Authorization") != f"Basic {acc.key}":
                return 401, {"error": {"code": 4012, "msg": "Bad credentials"}}, {}
            return 404, {"error": {"code": 4040, "msg": "Message not found"}}, {}
        if hit.path == "/api/3/user.php":  # SemySMS
            if hit.query.get("token") != acc.key:
                return 200, {"code": 1, "error": "Invalid token"}, {}
            return 200, {"code": 0, "id_user": 1, "is_pay": 1, "type_premium": 1, "date_end_premium": None,
                         "messages_premium": int(acc.balance)}, {}
        return 404, "<html>Not Found</html>", {}

    return respond


def base(gw: FakeGateway) -> str:
    return gw.url.removesuffix("/api/send")


def slot(preset: str, root: str, acc: Account, good: bool = True) -> dict[str, Any]:
    """The preset's settings pointed at the emulator, with the account's credentials (or wrong ones)."""
    login, password, key = (acc.login, acc.password, acc.key) if good else ("nobody", "Wrong-Pw-1", "WRONG-KEY-1")
    paths = {"smsc": "/sys/send.php", "smspilot": "/api.php", "prostor": "/send/",
             "digital_direct": "/api/v1/message", "semysms": "/api/3/sms.php"}
    values: dict[str, Any] = {"preset": preset, "url": root + paths[preset]}
    if preset in ("smsc", "prostor"):
        values |= {"login": login, "password": password}
    elif preset == "smspilot":
        values["api_key"] = key
    elif preset == "digital_direct":
        values |= {"password": key, "sender_name": "BEST"}
    else:
        values |= {"token": key, "device": "active"}
    return values


def text(found: list[doctor.Finding]) -> str:
    return "\n".join(f.render() for f in found)


BALANCES = {"smsc": "; balance 1234.5 RUB", "smspilot": "; balance 1234.5 RUB", "prostor": "; balance 1234.5",
            "semysms": "; balance 1234 messages", "digital_direct": " (its API reports no balance)"}
REFUSALS = {"smsc": "authorise error (error_code 2)", "smspilot": "APIKEY NOT FOUND (code 101)",
            "prostor": "HTTP 401: authorization failed", "digital_direct": "Bad credentials (code 4012, HTTP 401)",
            "semysms": "Invalid token (code 1)"}


@pytest.mark.parametrize("preset", list(BALANCES))
def test_good_and_bad_credentials_and_an_html_error(make_gateway: Any, preset: str) -> None:  # noqa: F811
    acc = Account(balance=1234.5)
    gw = make_gateway(account_api(acc))
    good = sms_probe(ProbeRequest("sms", slot(preset, base(gw), acc)))
    assert [f.level for f in good] == [doctor.OK, doctor.OK], text(good)
    assert f"ok      sms: {preset} accepts the credentials{BALANCES[preset]}\n" in text(good) + "\n"

    bad = sms_probe(ProbeRequest("sms", slot(preset, base(gw), acc, good=False)))
    assert [f.level for f in bad] == [doctor.OK, doctor.PROBLEM], text(bad)
    assert f"PROBLEM sms: {preset} refuses the credentials: {REFUSALS[preset]}" in text(bad)
    for secret in ("Wrong-Pw-1", "WRONG-KEY-1"):
        assert secret not in text(bad)

    acc.mode = "down"
    down = sms_probe(ProbeRequest("sms", slot(preset, base(gw), acc)))
    assert [f.level for f in down] == [doctor.OK, doctor.PROBLEM], text(down)
    assert f"the {preset} account query failed: HTTP 502: <html><head><title>502 Bad Gateway" in text(down)
    assert "Error" not in text(down).replace("502 Bad Gateway", "")  # no exception's name


def test_an_empty_account_and_a_balance_below_the_alert_are_findings(make_gateway: Any) -> None:  # noqa: F811
    acc = Account(balance=0.0)
    gw = make_gateway(account_api(acc))
    empty = sms_probe(ProbeRequest("sms", slot("smsc", base(gw), acc)))
    assert [f.level for f in empty] == [doctor.OK, doctor.OK, doctor.PROBLEM]
    assert "the smsc account is empty (balance 0 RUB): every SMS will fail" in text(empty)
    acc.balance = 120.0
    low = sms_probe(ProbeRequest("sms", {**slot("smsc", base(gw), acc), "balance_alert_below": 500}))
    assert [f.level for f in low] == [doctor.OK, doctor.OK, doctor.WARN]
    assert "WARNING sms: balance 120 RUB is below balance_alert_below (500)" in text(low)


def test_credentials_inside_the_parameter_string_are_not_guessed(make_gateway: Any) -> None:  # noqa: F811
    acc = Account()
    gw = make_gateway(account_api(acc))
    found = sms_probe(ProbeRequest("sms", {"url": f"{base(gw)}/sys/send.php", "reply_format": "smsc",
                                           "params": "login=best&psw=Gw-Pa55word&phones=%sms%&mes=%text%"}))
    assert [f.level for f in found] == [doctor.OK, doctor.WARN]
    assert "needs the credentials as settings" in text(found) and "Gw-Pa55word" not in text(found)
    assert not [h for h in gw.hits if h.path == "/sys/balance.php"]


def test_a_gateway_msgd_cannot_ask_says_so(make_gateway: Any) -> None:  # noqa: F811
    gw = make_gateway(account_api(Account()))
    found = sms_probe(ProbeRequest("sms", {"url": f"{base(gw)}/generic/send", "params": "to=%sms%&text=%text%"}))
    assert [f.level for f in found] == [doctor.NOTE]
    assert "its answers and credentials are not checked: this gateway type has no read-only call" in text(found)
    assert not gw.hits


@pytest.mark.parametrize(("fmt", "status", "body", "problem", "words"), [
    ("smsc", 200, '{"error": "no money", "error_code": 3}', "funds", "no money (error_code 3)"),
    ("smsc", 200, "<html>maintenance</html>", "unreadable", "HTTP 200: <html>maintenance</html>"),
    ("smspilot", 200, "12.5", "", ""),
    ("prostor", 200, "not enough credits", "funds", "not enough credits"),
    ("semysms", 503, "Service Unavailable", "unavailable", "HTTP 503: Service Unavailable"),
    ("digital_direct", 500, "", "unavailable", "HTTP 500"),
])
def test_answers_are_read_never_assumed(fmt: str, status: int, body: str, problem: str, words: str) -> None:
    check = read_account(fmt, status, body)
    assert (check.problem, check.words) == (problem, words)
    assert check.accepted == (problem == "")


def test_telegram_getme_on_a_non_json_404_reports_the_status(make_gateway: Any) -> None:  # noqa: F811
    gw = make_gateway(lambda hit: (404, "<html><body><h1>404 Not Found</h1></body></html>", {}))
    found = telegram_probe(ProbeRequest("telegram", {"api_url": base(gw),
                                                     "token": "123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}))
    assert [f.level for f in found] == [doctor.PROBLEM]
    assert "getMe answered HTTP 404, not the Bot API's JSON: <html><body><h1>404 Not Found</h1></body></html>" \
        in text(found)
    assert "JSONDecodeError" not in text(found) and "AAAAAAAAAAAAAAAAAAAAAAAAAAA" not in text(found)
