"""Adding a channel is adding a package with an entry point (issue 12, point 2): the dummy
distribution in tests/plugins/ registers ``dummy`` in the ``msgd.channels`` group, and msgd loads
its settings, checks them, dumps them, describes them and delivers through it without a line of
msgd changed."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.senders import registry
from tests.support import StageProcess, event, msgd, stage_env, wait_for

PLUGINS = Path(__file__).resolve().parent / "plugins"


@pytest.fixture
def dummy_installed() -> Iterator[None]:
    """The dummy distribution on sys.path, as `pip install` would leave it; removed afterwards."""
    sys.path.insert(0, str(PLUGINS))
    registry.reload()
    try:
        yield
    finally:
        sys.path.remove(str(PLUGINS))
        sys.modules.pop("msgd_dummy_channel.channel", None)
        sys.modules.pop("msgd_dummy_channel", None)
        registry.reload()


def test_without_the_distribution_there_is_no_such_channel() -> None:
    assert "dummy" not in registry.live_channels()


def test_the_entry_point_registers_the_channel(dummy_installed: None) -> None:
    spec = registry.channel_spec("dummy")
    assert spec.sender.__module__ == "msgd_dummy_channel.channel"
    assert (spec.title, spec.contact_key) == ("Dummy", "dummy")
    assert registry.live_channels() == ["dummy", "email", "push", "sms", "telegram"]
    assert registry.sender_classes()["dummy"] is spec.sender
    assert [f.name for f in spec.fields()] == ["inbox", "api_token", "greeting"]
    assert spec.fields()[1].secret and spec.fields()[0].required


def test_config_load_checks_a_plugins_settings_with_its_model(db: str, dummy_installed: None,
                                                               tmp_path: Path) -> None:
    from msgd.config import ConfigError, config_schema, dump_config, load_config
    from msgd.store.models import ChannelSettings

    bad = "operators:\n  - code: best\n    name: B\n    channels:\n      dummy: {greting: Hi}\n"
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert err.value.errors == [
        "operators[best].channels.dummy.inbox: is required (line 5)",
        "operators[best].channels.dummy.greting: unknown key, did you mean 'greeting'? (known: inbox, api_token,"
        " greeting, outbox, enabled, position) (line 5)",
    ]
    inbox = tmp_path / "inbox.jsonl"
    with pytest.raises(ConfigError) as err:
        load_config(f"operators:\n  - code: best\n    name: B\n    channels:\n      dummy: {{inbox: '{inbox}'}}\n")
    assert err.value.errors == ["operators[best].channels.dummy.api_token: is required: the provider refuses"
                                " requests without it (line 5)"]

    load_config(f"operators:\n  - code: best\n    name: B\n    channels:\n"
                f"      dummy: {{inbox: '{inbox}', api_token: tok-8841}}\n")
    row = ChannelSettings.objects.get(channel="dummy")
    assert (row.params, row.secrets) == ({"inbox": str(inbox)}, {"api_token": "tok-8841"})
    dumped = dump_config()
    assert "api_token: '***'" in dumped and "tok-8841" not in dumped
    assert not load_config(dumped).changed
    slot = config_schema()["$defs"]["DummySettingsSlot"]
    assert slot["required"] == ["inbox"]
    assert slot["properties"]["api_token"]["anyOf"][0] == {"format": "password", "type": "string", "writeOnly": True}


def test_a_broken_plugin_is_left_out_and_the_others_work(tmp_path: Path, dummy_installed: None) -> None:
    dist = tmp_path / "msgd_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: msgd-broken\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        "[msgd.channels]\nviber = msgd_no_such_module.channel:CHANNEL\n"
        "whatsapp = msgd_dummy_channel.channel:DummySender\n", encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    registry.reload()
    try:
        broken = {b.name: b.reason for b in registry.broken_channels()}
        assert broken["viber"].startswith("cannot be loaded: ModuleNotFoundError")
        assert broken["whatsapp"] == "is a ABCMeta, not a ChannelSpec"
        assert "dummy" in registry.live_channels() and "sms" in registry.live_channels()
        assert "whatsapp" in registry.legacy_channels()  # still the original's name: unsupported
    finally:
        sys.path.remove(str(tmp_path))
        registry.reload()


def test_a_plugin_channel_delivers_through_the_pipeline(tmp_path: Path) -> None:
    """`msgd run all` (embedded broker) with the dummy distribution on PYTHONPATH: its queues are
    declared, its sender runs, and the router finds the subscriber's ``contacts.dummy``."""
    inbox = tmp_path / "inbox.jsonl"
    env = stage_env(MSGD_VAR_DIR=str(tmp_path / "var"), PYTHONPATH=str(PLUGINS))
    config = {
        "operators": [{"code": "best", "name": "ООО Лучший провайдер", "timezone": "Europe/Moscow",
                       "channels": {"dummy": {"inbox": str(inbox), "api_token": "tok-8841", "greeting": "Привет!"}}}],
        "templates": [{"name": "dummy", "event": "low_balance", "channel": "dummy",
                       "body": "Баланс %(balance).2f"}],
    }
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    e = event(1, sms=None)
    e["abonent"]["contacts"]["dummy"] = "alice, bob"
    (tmp_path / "event.json").write_text(json.dumps(e, ensure_ascii=False), encoding="utf-8")
    msgd("migrate", env=env)
    msgd("config", "load", str(tmp_path / "config.json"), env=env)
    assert '"dummy"' in msgd("config", "schema", env=env).stdout
    proc = StageProcess(["all", "--no-web"], env, tmp_path / "all.log").start()
    try:
        msgd("publish", str(tmp_path / "event.json"), env=env)

        def sent() -> list[dict[str, Any]]:
            rows = [r for r in json.loads(msgd("log", "--json", env=env).stdout) if r["state"] == "sent"]
            return rows if len(rows) == 2 else []

        rows = wait_for(sent, timeout=60, what="both dummy messages sent")
    finally:
        proc.stop()
    assert {r["channel"] for r in rows} == {"dummy"} and {r["recipient"] for r in rows} == {"alice", "bob"}
    lines = [json.loads(line) for line in inbox.read_text(encoding="utf-8").splitlines()]
    assert sorted((x["to"], x["text"]) for x in lines) == [("alice", "Привет! Баланс -12.50"),
                                                           ("bob", "Привет! Баланс -12.50")]
