"""Gateway balances (issue 15.4): the dlr stage's account poll and the balances in gateway
replies land in the store; an answer that says the money ran out marks the account empty at once;
the msgd_gateway_* gauges, the admin's channel list and promtool's rule tests show the alerts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from msgd.settings import Settings
from msgd.store.cache import ChannelConfig, ConfigCache
from services.dlr.balances import BalancePoller
from services.senders.base import PermanentError
from services.senders.model import SettingsInvalid
from services.senders.sms import accounts
from services.senders.sms.settings import SmsSettings
from tests import seed
from tests.support import ROOT
from tests.test_admin_channel_form import staff  # noqa: F401 - fixture
from tests.test_doctor_accounts import account_api, base
from tests.test_sms_gateways import (  # noqa: F401 - fixtures
    Account,
    make_gateway,
    msg,
    sender,
    smspilot,
)
from tests.test_web_api import embedded  # noqa: F401 - fixture


@pytest.fixture(autouse=True)
def fresh_memory() -> None:
    accounts.forget()


def account(slot: int) -> Any:
    from msgd.store.models import GatewayAccount

    return GatewayAccount.objects.get(settings_id=slot)


def sms_slot(op: Any, **params: Any) -> Any:
    from msgd.store.models import ChannelSettings

    secrets = {k: params.pop(k) for k in ("login", "password", "api_key", "token") if k in params}
    return ChannelSettings.objects.create(operator=op, channel="sms", position=params.pop("position", 1),
                                          params=params, secrets=secrets)


# -- what the sender reads in replies ---------------------------------------------------------------

def test_a_reply_s_balance_is_kept_and_no_money_marks_the_account_empty_at_once(
        db: str, make_gateway: Any, sender: Any) -> None:  # noqa: F811
    acc = Account(balance=100.0)
    gw = make_gateway(smspilot(acc))
    row = sms_slot(seed.operator(), preset="smspilot", url=gw.url, api_key=acc.key)
    config = ChannelConfig("sms", dict(row.params), dict(row.secrets), id=row.id)

    sender.send(msg(), config)  # SMSPilot's answer carries the balance (11908.50)
    first = account(row.id)
    assert (first.balance, first.empty, first.working_at is not None) == (11908.5, False, True)

    acc.balance = 0  # "Not enough money" (code 241): written at once, not a minute later
    with pytest.raises(PermanentError):
        sender.send(msg(), config)
    assert account(row.id).empty

    acc.balance = 50.0  # topped up: the next accepted message clears it
    sender.send(msg(), config)
    assert not account(row.id).empty


def test_a_slot_that_is_not_stored_records_nothing(db: str, make_gateway: Any, sender: Any) -> None:  # noqa: F811
    from msgd.store.models import GatewayAccount

    acc = Account()
    gw = make_gateway(smspilot(acc))
    sender.send(msg(), ChannelConfig("sms", {"preset": "smspilot", "url": gw.url}, {"api_key": acc.key}))
    assert not GatewayAccount.objects.exists()


# -- the dlr stage's poll ---------------------------------------------------------------------------

def poller() -> BalancePoller:
    return BalancePoller(Settings(domain="localhost", http_timeout=5.0, balance_poll_minutes=15.0), ConfigCache(0),
                         requests.Session())


def test_the_poll_asks_each_gateway_once_per_interval_whoever_asks(db: str, make_gateway: Any) -> None:  # noqa: F811
    acc = Account(balance=1234.5)
    gw = make_gateway(account_api(acc))
    op = seed.operator()
    good = sms_slot(op, preset="smsc", url=f"{base(gw)}/sys/send.php", login=acc.login, password=acc.password,
                    balance_alert_below=2000)
    refused = sms_slot(op, preset="semysms", url=f"{base(gw)}/api/3/sms.php", token="WRONG-TOKEN-1", device="1",
                       position=2)
    sms_slot(op, url=f"{base(gw)}/generic/send", params="to=%sms%&text=%text%", position=3)  # no query: not asked

    assert poller().tick() == 2
    assert (account(good.id).balance, account(good.id).unit, account(good.id).empty) == (1234.5, "RUB", False)
    assert (account(refused.id).problem, account(refused.id).words) == ("credentials", "Invalid token (code 1)")
    assert not account(refused.id).empty  # refused credentials say nothing about the money
    assert poller().tick() == 0  # another dlr process within the interval: nobody asked again
    assert len(gw.hits) == 2

    acc.balance = 0.0
    from msgd.store.models import GatewayAccount

    GatewayAccount.objects.update(polled_at=None)  # the interval passed
    assert poller().tick() == 2
    assert account(good.id).empty and account(good.id).balance == 0


def test_a_gateway_that_is_down_is_asked_again_and_not_called_empty(db: str, make_gateway: Any) -> None:  # noqa: F811
    acc = Account(mode="down")
    gw = make_gateway(account_api(acc))
    slot = sms_slot(seed.operator(), preset="smsc", url=f"{base(gw)}/sys/send.php", login="a", password="bbbb")
    assert poller().tick() == 1
    found = account(slot.id)
    assert found.problem == "unavailable" and found.words.startswith("HTTP 502: <html>") and not found.empty


def test_never_when_switched_off(db: str, make_gateway: Any) -> None:  # noqa: F811
    gw = make_gateway(account_api(Account()))
    sms_slot(seed.operator(), preset="smsc", url=f"{base(gw)}/sys/send.php", login="a", password="bbbb")
    off = BalancePoller(Settings(domain="localhost", balance_poll_minutes=0), ConfigCache(0), requests.Session())
    assert off.tick() == 0 and not gw.hits


# -- what people see: the gauges, the admin, the alerts -------------------------------------------------

def scrape() -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(accounts.AccountCollector(ttl=0))
    return generate_latest(registry).decode()


def test_the_gauges_and_the_admin_s_channel_list(db: str, staff: Any) -> None:  # noqa: F811
    from django.utils import timezone

    from msgd.store.models import GatewayAccount

    op = seed.operator()
    low = sms_slot(op, preset="smsc", login="a", password="bbbb", balance_alert_below=500)
    empty = sms_slot(op, preset="smspilot", api_key="KEY-1234", position=2)
    sms_slot(op, url="https://gw.example/send", params="to=%sms%", position=3)  # nothing known, no threshold
    now = timezone.now()
    GatewayAccount.objects.create(settings_id=low.id, balance=120.5, unit="RUB", balance_at=now, working_at=now)
    GatewayAccount.objects.create(settings_id=empty.id, empty_at=now)

    text = scrape()
    labels = f'channel_settings_id="{low.id}",gateway="smsc.ru",operator="best"'
    assert f"msgd_gateway_balance{{{labels}}} 120.5" in text
    assert f"msgd_gateway_balance_alert_below{{{labels}}} 500.0" in text
    assert f"msgd_gateway_account_empty{{{labels}}} 0.0" in text
    assert f'msgd_gateway_account_empty{{channel_settings_id="{empty.id}",gateway="smspilot.ru",operator="best"}} 1.0' \
        in text
    assert len(re.findall(r"^msgd_gateway_account_empty\{", text, re.M)) == 2

    page = staff.get("/admin/msgd/channelsettings/").content.decode()
    assert re.search(r'class="msgd-balance-low"[^>]*>120.5 RUB &lt; 500<', page)
    assert re.search(r'class="msgd-balance-empty"[^>]*>no money<', page)


def test_balance_alert_below_is_a_number() -> None:
    assert SmsSettings.parse({"preset": "smsc", "login": "a", "password": "b", "balance_alert_below": "500"}
                             ).balance_alert_below == 500.0
    for bad in ("lots", True):
        with pytest.raises(SettingsInvalid) as err:
            SmsSettings.parse({"preset": "smsc", "login": "a", "password": "b", "balance_alert_below": bad})
        assert str(err.value).startswith("balance_alert_below: must be a number")


def rule_test(promtool: str, tmp_path: Path, series: list[dict[str, str]], checks: list[dict[str, Any]]) -> None:
    shutil.copy(ROOT / "deploy" / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["alerts.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }))
    r = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def expected_annotations(alert: str, labels: dict[str, str], value: str) -> dict[str, str]:
    """The rule's annotations as Prometheus fills them in (only $labels.x and $value are used)."""
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert]

    def fill(text: str) -> str:
        text = re.sub(r"\{\{ *\$labels\.(\w+) *\}\}", lambda m: labels[m[1]], text)
        return re.sub(r"\{\{ *\$value *\}\}", value, text)

    return {k: fill(v) for k, v in rule["annotations"].items()}


SLOT = 'channel_settings_id="7",operator="best",gateway="smsc.ru"'
LABELS = {"channel_settings_id": "7", "operator": "best", "gateway": "smsc.ru"}


def test_the_low_balance_alert_fires_below_the_slot_s_threshold(promtool: str, tmp_path: Path) -> None:
    # two processes export the same slot (the dlr stage and an SMS sender); the balance falls 900 -> 300
    rule_test(promtool, tmp_path, [
        {"series": f'msgd_gateway_balance{{{SLOT},instance="dlr:9400"}}', "values": "900 900 300 300"},
        {"series": f'msgd_gateway_balance{{{SLOT},instance="sms:9401"}}', "values": "900 900 300 300"},
        {"series": f'msgd_gateway_balance_alert_below{{{SLOT},instance="dlr:9400"}}', "values": "500 500 500 500"},
        {"series": 'msgd_gateway_balance{channel_settings_id="8",operator="north",gateway="smspilot.ru"}',
         "values": "10 10 10 10"},  # no threshold set: never alerts
    ], [
        {"eval_time": "1m", "alertname": "MsgdGatewayBalanceLow", "exp_alerts": []},
        {"eval_time": "2m", "alertname": "MsgdGatewayBalanceLow", "exp_alerts": [{
            "exp_labels": {**LABELS, "severity": "warning"},
            "exp_annotations": {
                "summary": "SMS gateway smsc.ru of operator best: balance 300 is below its alert threshold",
                "description": "Top up the gateway account (channel settings #7) before it runs out: then every SMS"
                               " of every subscriber fails. msgd doctor and the admin's channel list show the balance.",
            }}]},
    ])


def test_the_empty_account_alert_fires_at_once_and_resolves(promtool: str, tmp_path: Path) -> None:
    rule_test(promtool, tmp_path, [
        {"series": f'msgd_gateway_account_empty{{{SLOT},instance="dlr:9400"}}', "values": "0 0 1 1 0"},
        {"series": f'msgd_gateway_account_empty{{{SLOT},instance="sms:9401"}}', "values": "0 0 1 1 0"},
    ], [
        {"eval_time": "1m", "alertname": "MsgdGatewayAccountEmpty", "exp_alerts": []},
        {"eval_time": "2m", "alertname": "MsgdGatewayAccountEmpty", "exp_alerts": [{
            "exp_labels": {**LABELS, "severity": "critical"},
            "exp_annotations": {
                "summary": "SMS gateway smsc.ru of operator best: the account has no money",
                "description": "Every SMS through this gateway (channel settings #7) fails until the account is"
                               " topped up (no money is not a reason to try the fallback gateway). Top it up; msgd"
                               " doctor confirms the balance.",
            }}]},
        {"eval_time": "4m", "alertname": "MsgdGatewayAccountEmpty", "exp_alerts": []},
    ])
