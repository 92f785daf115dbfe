"""The admin's channel settings form (issue 12.4): generated from the channel's settings model,
one labelled field per setting and only that channel's; the preset shown after saving; secrets
"set / not set" with a clear box; saving runs the model `msgd config load` runs, so what the
admin saves dumps and loads back (checked with the commands)."""

from __future__ import annotations

import html
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from msgd.config import dump_config
from msgd.settings import Settings
from services.senders.registry import channel_specs
from tests import seed
from tests import test_web_api as api_tests
from tests.support import msgd, stage_env

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "msgd" / "locale" / "ru" / "LC_MESSAGES" / "django.po"
embedded = api_tests.embedded  # the fixture: an embedded broker in tmp_path
ADD = "/admin/msgd/channelsettings/add/"


@pytest.fixture
def staff(db: str, embedded: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from msgd.web.server import ensure_admin

    get_user_model().objects.all().delete()
    monkeypatch.setenv("MSGD_ADMIN_USER", "boss")
    monkeypatch.setenv("MSGD_ADMIN_PASSWORD", "pw-for-tests-1")
    ensure_admin()
    c = Client()
    assert c.login(username="boss", password="pw-for-tests-1")
    return c


def form(op: Any, channel: str = "sms", **settings: str) -> dict[str, str]:
    """The POST of a channel form as a browser sends it: the slot, then ``setting_<name>`` (or
    clear_<name>) fields; checkboxes that are ticked unless changed (verify) sent ticked."""
    data = {"operator": str(op.id), "channel": channel, "position": "1", "enabled": "on"}
    data |= {f"setting_{f.name}": "on" for f in channel_specs()[channel].fields() if f.kind == "bool" and f.default}
    for key, value in settings.items():
        data[key if key.startswith(("clear_", "outbox")) else f"setting_{key}"] = value
    return data


def errors(page: Any) -> dict[str, list[str]]:
    """The errors a form page shows, by field name ("" = the form's own)."""
    text = page.content.decode()
    found: dict[str, list[str]] = {}
    for name, items in re.findall(r'<ul class="errorlist[^"]*"(?: id="id_(\w+)_error")?>(.*?)</ul>', text, re.S):
        found.setdefault(name, []).extend(html.unescape(m) for m in re.findall(r"<li>(.*?)</li>", items, re.S))
    return found


def labels(page: Any) -> dict[str, str]:
    """The settings' labels by setting name."""
    found = re.findall(r'<label[^>]* for="id_setting_(\w+)">(.*?):?</label>', page.content.decode())
    return {name: html.unescape(text) for name, text in found}


def field_names(page: Any) -> set[str]:
    return set(re.findall(r'name="((?:setting|clear)_\w+)"', page.content.decode()))


GOOD = {"url": "https://gw.example/send", "params": "user=best&to=%sms%&text=%text%", "strip_plus": "true"}


# -- one field per setting, only the chosen channel's ------------------------------------------------

def test_adding_asks_the_channel_first_then_shows_only_its_settings(staff: Any) -> None:
    op = seed.operator()
    choose = staff.get(ADD, {"operator": str(op.id)}).content.decode()
    links = dict(re.findall(r'<a href="\?([^"]+)" data-channel="(\w+)"', choose))
    assert set(links.values()) == set(channel_specs())
    assert f"operator={op.id}&amp;channel=sms" in links  # what was asked along is kept
    for name, spec in channel_specs().items():
        page = staff.get(ADD, {"channel": name})
        assert page.status_code == 200
        wanted = {f"setting_{f.name}" for f in spec.fields()} | {f"clear_{f.name}" for f in spec.fields() if f.secret}
        assert field_names(page) == wanted, name
        assert labels(page) == {f.name: f.label for f in spec.fields()}, name
    sms = field_names(staff.get(ADD, {"channel": "sms"}))
    assert "setting_vapid_private_key" not in sms and "setting_host" not in sms  # no VAPID, no SMTP on SMS
    page = staff.get(ADD, {"channel": "sms"}).content.decode()
    assert 'name="params"' not in page  # no JSON textarea
    assert re.search(r'<input type="checkbox" name="setting_verify"[^>]* checked', page)  # the default: ticked


def test_an_existing_row_shows_its_own_channel_s_form(staff: Any) -> None:
    op = seed.operator()
    row = seed.smtp(op)
    page = staff.get(f"/admin/msgd/channelsettings/{row.id}/change/")
    names = field_names(page)
    assert {"setting_host", "setting_port", "setting_password"} <= names and "setting_url" not in names
    assert 'value="127.0.0.1"' in page.content.decode()


# -- the cases: refused at the field, nothing saved --------------------------------------------

@pytest.mark.parametrize(("settings", "field", "shown"), [
    ({**GOOD, "url": "ftp://x"}, "setting_url",
     "url: 'ftp://x' is not a valid http(s) URL: it must start with http:// or https:// and a host"),
    ({**GOOD, "strip_plus": "да"}, "setting_strip_plus", "strip_plus: must be true or false, got 'да'"),
    ({"params": GOOD["params"]}, "setting_url", "url: is required: the gateway's address (or choose a preset)"),
    # a misspelt key cannot be typed: the form has no free keys; sent by hand it is ignored, and the url missing
    ({"urll": GOOD["url"], "params": GOOD["params"]}, "setting_url",
     "url: is required: the gateway's address (or choose a preset)"),
    ({**GOOD, "max_segments": "0"}, "setting_max_segments", "max_segments: must be at least 1, got '0'"),
    ({**GOOD, "request_type": "soap"}, "setting_request_type",
     "request_type: request type 'soap' is not one of POST, GET, Ростелеком JSON (rostelecom_json), Digital"
     " Direct JSON (digital_direct_json)"),
    ({"preset": "smsc", "login": "L"}, "setting_password",
     "password: is required by preset smsc (%password% in params: password)"),
])
def test_the_form_refuses_what_config_load_refuses_and_saves_nothing(staff: Any, settings: dict[str, str],
                                                                      field: str, shown: str) -> None:
    from msgd.store.models import ChannelSettings

    op = seed.operator()
    page = staff.post(f"{ADD}?channel=sms", form(op, **settings))
    assert page.status_code == 200 and errors(page) == {field: [shown]}
    assert ChannelSettings.objects.count() == 0
    row = seed.sms_gateway(op, "https://gw.example/send")
    before = (dict(row.params), dict(row.secrets))
    page = staff.post(f"/admin/msgd/channelsettings/{row.id}/change/", form(op, **settings))
    assert page.status_code == 200 and errors(page) == {field: [shown]}
    row.refresh_from_db()
    assert (row.params, row.secrets) == before


def test_a_dump_after_admin_edits_loads_back(staff: Any, db: str, tmp_path: Path) -> None:
    """The issue's backup and restore: admin edits, `msgd config dump > d.yaml`, `msgd config
    load d.yaml` (the commands, against the same store)."""
    from msgd.store.models import ChannelSettings

    op = seed.operator()
    assert staff.post(f"{ADD}?channel=sms", form(op, **GOOD, login="best", password="Pw-7731")).status_code == 302
    row = ChannelSettings.objects.get()
    assert row.params == {**GOOD, "strip_plus": True}  # stored as the model writes it
    assert row.secrets == {"login": "best", "password": "Pw-7731"}
    edit = form(op, **{**GOOD, "strip_plus": "false", "timeout": "7.5"}, outbox="on")
    assert staff.post(f"/admin/msgd/channelsettings/{row.id}/change/", edit).status_code == 302
    assert staff.post(f"{ADD}?channel=telegram", form(op, "telegram", token="123:ABC-tg", parse_mode="HTML")).status_code == 302
    assert ChannelSettings.objects.get(channel="telegram").params == {"parse_mode": "HTML"}  # defaults left out

    env = stage_env(MSGD_DATABASE_URL=db, MSGD_VAR_DIR=str(tmp_path / "var"))
    dumped = msgd("config", "dump", env=env).stdout
    assert "strip_plus: false" in dumped and "timeout: 7.5" in dumped
    assert "Pw-7731" not in dumped and "123:ABC-tg" not in dumped
    (tmp_path / "d.yaml").write_text(dumped, encoding="utf-8")
    loaded = msgd("config", "load", str(tmp_path / "d.yaml"), env=env)
    assert "channels: 0 created, 0 updated, 2 unchanged" in loaded.stdout
    row.refresh_from_db()
    assert row.secrets == {"login": "best", "password": "Pw-7731"} and row.outbox
    assert dump_config() == dumped


# -- presets and secrets ----------------------------------------------------------------------------

def test_the_preset_is_shown_after_saving_and_fills_the_placeholders(staff: Any) -> None:
    from msgd.store.models import ChannelSettings

    op = seed.operator()
    assert staff.post(f"{ADD}?channel=sms", form(op, preset="smsc", login="L", password="topsecret")).status_code == 302
    row = ChannelSettings.objects.get()
    assert row.params == {"preset": "smsc"} and row.secrets == {"login": "L", "password": "topsecret"}
    page = staff.get(f"/admin/msgd/channelsettings/{row.id}/change/").content.decode()
    assert re.search(r'<option value="smsc" selected>', page)
    assert re.search(r'name="setting_url"[^>]*placeholder="https://smsc.ru/sys/send.php"', page)
    # saved again unchanged (the secrets left empty), it stays what it was
    assert staff.post(f"/admin/msgd/channelsettings/{row.id}/change/", form(op, preset="smsc")).status_code == 302
    row.refresh_from_db()
    assert row.params == {"preset": "smsc"} and row.secrets == {"login": "L", "password": "topsecret"}


def test_secrets_show_set_or_not_set_and_are_kept_replaced_or_cleared(staff: Any) -> None:
    from msgd.store.models import ChannelSettings

    op = seed.operator()
    row = seed.sms_gateway(op, "https://gw.example/send", params="user=%login%&pw=%md5%&to=%sms%&text=%text%",
                           secrets={"login": "best", "md5_key": "Md5-Key-4410"})
    url = f"/admin/msgd/channelsettings/{row.id}/change/"
    page = staff.get(url).content.decode()
    assert "Md5-Key-4410" not in page and "best" not in page.split('name="setting_login"')[1][:200]
    state = dict(re.findall(r'name="setting_(\w+)"[^>]*data-stored="([^"]+)"', page))
    assert state == {"login": "set", "password": "not set", "md5_key": "set", "api_key": "not set",
                     "token": "not set", "dlr_url": "not set"}
    assert re.search(r'name="clear_password"[^>]*disabled', page)  # nothing stored: nothing to clear
    base = {k: v for k, v in row.params.items() if k != "request_type"}
    # empty keeps, typed replaces
    assert staff.post(url, form(op, **base, md5_key="New-Md5-88")).status_code == 302
    assert ChannelSettings.objects.get().secrets == {"login": "best", "md5_key": "New-Md5-88"}
    # clearing one the parameter string needs is refused at that field
    page = staff.post(url, form(op, **base, clear_md5_key="on"))
    assert errors(page) == {"setting_password": ["password: is required by request type post (%md5% in params:"
                                                 " md5_key or password)"]}
    assert staff.post(url, form(op, **{**base, "params": "to=%sms%&text=%text%"}, clear_md5_key="on",
                                clear_login="on")).status_code == 302
    assert ChannelSettings.objects.get().secrets == {}


def test_secrets_inside_the_parameter_string_are_masked_and_kept(staff: Any) -> None:
    from msgd.store.models import ChannelSettings

    op = seed.operator()
    row = seed.sms_gateway(op, "http://127.0.0.1:9/send", params="login=best&psw=hunter2&phones=%sms%&mes=%text%")
    url = f"/admin/msgd/channelsettings/{row.id}/change/"
    page = staff.get(url).content.decode()
    assert "hunter2" not in page and "psw=***" in page
    shown = "login=best&psw=***&phones=%sms%&mes=%text%"
    assert staff.post(url, form(op, url="http://127.0.0.1:9/send", params=shown)).status_code == 302
    assert ChannelSettings.objects.get().params["params"] == row.params["params"]
    page = staff.post(url, form(op, url="http://127.0.0.1:9/send", params="psw=***&x=1"))
    assert list(errors(page)) == ["setting_params"]
    assert ChannelSettings.objects.get().params["params"] == row.params["params"]


def test_a_viewer_sees_the_settings_masked_and_no_form(staff: Any) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.test import Client

    op = seed.operator()
    row = seed.sms_gateway(op, "http://127.0.0.1:9/send", params="psw=hunter2&to=%sms%", secrets={"login": "L"})
    viewer = get_user_model().objects.create_user("viewer", password="pw-for-tests-2", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_channelsettings"))
    c = Client()
    assert c.login(username="viewer", password="pw-for-tests-2")
    page = c.get(f"/admin/msgd/channelsettings/{row.id}/change/")
    text = page.content.decode()
    assert page.status_code == 200 and "psw=***" in text and "hunter2" not in text and "login=***" in text
    assert not field_names(page)
    assert c.get(ADD).status_code == 403


# -- the labels: English msgids, the manual's names in the Russian catalog ----------------------------------

def read_po(path: Path) -> dict[str, str]:
    """msgid -> msgstr of a .po file (single-line entries, as this catalog writes them)."""
    text = path.read_text(encoding="utf-8")
    pairs = re.findall(r'^msgid "((?:[^"\\]|\\.)*)"\nmsgstr "((?:[^"\\]|\\.)*)"', text, re.M)
    return {k.encode().decode("unicode_escape").encode("latin-1").decode("utf-8") if "\\" in k else k: v
            for k, v in pairs if k}


def write_mo(catalog: dict[str, str], path: Path) -> None:
    """A GNU .mo file of ``catalog`` (the format: gettext's manual, "The Format of GNU MO Files")."""
    header = "Content-Type: text/plain; charset=UTF-8\n"
    items = sorted({"": header, **catalog}.items())
    ids = b"".join(k.encode() + b"\0" for k, _ in items)
    strs = b"".join(v.encode() + b"\0" for _, v in items)
    start = 7 * 4 + 16 * len(items)
    offsets, pos = [], 0
    for k, _ in items:
        offsets += [len(k.encode()), start + pos]
        pos += len(k.encode()) + 1
    trans, pos = [], 0
    for _, v in items:
        trans += [len(v.encode()), start + len(ids) + pos]
        pos += len(v.encode()) + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("Iiiiiii", 0x950412DE, 0, len(items), 7 * 4, 7 * 4 + 8 * len(items), 0, 0)
                     + struct.pack(f"{len(offsets)}i", *offsets) + struct.pack(f"{len(trans)}i", *trans)
                     + ids + strs)


MANUAL = {"url": "Адрес СМС шлюза", "params": "Post параметры", "request_type": "Тип запроса к серверу",
          "md5_key": "MD5 подпись", "strip_plus": "Убирать + из номера", "login": "Логин сервера sms",
          "password": "Пароль сервера sms", "sender_name": "Имя отправителя sms"}


def russian() -> dict[str, str]:
    """msgid -> Russian text of the catalog (Babel reads it; fuzzy and empty entries left out)."""
    from babel.messages.pofile import read_po as babel_read_po

    with CATALOG.open("rb") as f:
        catalog = babel_read_po(f, locale="ru")
    return {m.id: m.string for m in catalog if isinstance(m.id, str) and m.id and m.string and not m.fuzzy}


def kept_names(english: str, values: set[str]) -> set[str]:
    """What a translation of ``english`` keeps as typed: ``%placeholders%``, snake_case names,
    numbers, and ``values`` (the field's own values: post, get, ssl...) where the text names them."""
    words = re.findall(r"(?<![\w%-])[\w-]+(?![\w-])", english)
    return set(re.findall(r"%\w+%", english)) | {w for w in words if "_" in w or w.isdigit() or w in values}


def test_every_label_and_help_text_has_its_russian_text_in_the_catalog() -> None:
    """Labels (field titles), help texts (descriptions) and the choice page's channel lines of
    every channel: a Russian text each, keeping placeholders and value names as they are."""
    from msgd.web.admin_channels import channel_line

    ru = russian()
    missing, changed = [], []
    for name, spec in channel_specs().items():
        texts = [(f.name, f.label, set()) for f in spec.fields()]
        texts += [(f.name, f.help, {*f.choices, *(spec.presets if f.name == "preset" else ())})
                  for f in spec.fields() if f.help]
        texts.append(("(channel)", channel_line(spec), set()))
        for setting, english, values in texts:
            if not ru.get(english):
                missing.append((name, setting, english))
                continue
            lost = {w for w in kept_names(english, values)
                    if not re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", ru[english])}
            if lost:
                changed.append((name, setting, sorted(lost)))
    assert not missing
    assert not changed
    assert {"sms", "email", "telegram", "push"} <= set(channel_specs())
    sms = {f.name: f.label for f in channel_specs()["sms"].fields()}
    assert {name: ru[sms[name]] for name in MANUAL} == MANUAL
    assert kept_names("post (form body) or %sms%; default 25, see ca_bundle", {"post"}) == {
        "post", "%sms%", "25", "ca_bundle"}


def test_the_form_shows_the_manual_s_names_in_russian(staff: Any, tmp_path: Path) -> None:
    from django.test import override_settings
    from django.utils import translation

    write_mo(read_po(CATALOG), tmp_path / "ru" / "LC_MESSAGES" / "django.mo")
    with override_settings(LOCALE_PATHS=[str(tmp_path)], LANGUAGE_CODE="ru"), translation.override("ru"):
        page = staff.get(ADD, {"channel": "sms"})
    shown = labels(page)
    assert {name: shown[name] for name in MANUAL} == MANUAL


# -- the Russian pages: no English text of ours (issue 13's check, per channel form) --------------------------

RU = {"HTTP_ACCEPT_LANGUAGE": "ru-RU,ru;q=0.9"}


def english_left(text: str, helps: list[str]) -> list[str]:
    """msgd's English texts in a page's visible text: the catalog's msgids (as tests/test_i18n_pages.py
    finds them) and the given help texts."""
    from tests.test_i18n_pages import _catalog, _telling

    english, _russian = _telling(_catalog())
    return sorted({msgid for msgid, p in english if p.search(text)} | {h for h in helps if h in text})


@pytest.mark.parametrize("channel", ["sms", "email", "telegram", "push"])
def test_the_russian_form_shows_every_help_text_in_russian(staff: Any, channel: str) -> None:
    from tests.test_i18n_pages import visible_text

    spec, ru = channel_specs()[channel], russian()
    helps = [f.help for f in spec.fields() if f.help]
    page = staff.get(ADD, {"channel": channel}, **RU)
    assert page.status_code == 200 and '<html lang="ru"' in page.content.decode()
    text = visible_text(page.content.decode())
    assert not english_left(text, helps)
    assert [h for h in helps if ru[h] not in text] == []
    assert "Секреты" in text and "Соединение" in text


def test_the_russian_channel_list_choice_page_and_a_stored_secret_s_help(staff: Any) -> None:
    from django.utils import timezone

    from msgd.store.models import GatewayAccount
    from msgd.web.admin_channels import channel_line
    from tests.test_i18n_pages import visible_text

    op, ru = seed.operator(), russian()
    row = seed.sms_gateway(op, "https://gw.example/send", secrets={"password": "hunter2"})
    empty, refused = (seed.sms_gateway(seed.operator(code), f"https://{code}.example/send") for code in ("b2", "b3"))
    GatewayAccount.objects.create(settings_id=empty.id, empty_at=timezone.now())
    GatewayAccount.objects.create(settings_id=refused.id, problem="credentials", polled_at=timezone.now())
    pages = {"list": staff.get("/admin/msgd/channelsettings/", **RU),
             "choice": staff.get(ADD, {"operator": str(op.id)}, **RU),
             "change": staff.get(f"/admin/msgd/channelsettings/{row.id}/change/", **RU)}
    texts = {name: visible_text(page.content.decode()) for name, page in pages.items()}
    helps = [f.help for spec in channel_specs().values() for f in spec.fields() if f.help]
    lines = [channel_line(spec) for spec in channel_specs().values()]
    for name, text in texts.items():
        assert pages[name].status_code == 200, name
        assert not english_left(text, helps + lines), name
    assert all(ru[line] in texts["choice"] for line in lines)
    password = next(f for f in channel_specs()["sms"].fields() if f.name == "password")
    assert f"задан: оставьте пустым, чтобы сохранить — {ru[password.help]}" in texts["change"]
    assert "hunter2" not in pages["change"].content.decode()
    assert "нет денег" in texts["list"]
    # a refused balance query: its problem in Russian, the code's meaning in the title
    assert re.search(r'class="msgd-balance-problem" data-problem="credentials" title="[^"]*Шлюз не принял[^"]*">'
                     r'неверный логин или ключ<', pages["list"].content.decode())
