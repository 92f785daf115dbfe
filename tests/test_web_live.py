"""The web admin and API served for real: `msgd run web` (gunicorn) and, in a browser,
`msgd run all` in embedded mode (web thread + every stage) driven by headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need
from tests.support import ROOT, StageProcess, free_port, msgd, stage_env, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "browser-test-pw-1"



def http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def answers(url: str) -> bool:
    try:
        return http(url)[0] == 200
    except OSError:
        return False


def embedded_env(tmp_path: Path, port: int) -> dict[str, str]:
    var = tmp_path / "var"
    return stage_env(MSGD_VAR_DIR=str(var), MSGD_DATABASE_URL=f"sqlite:///{var / 'msgd.sqlite3'}",
                     MSGD_BROKER_URL="", MSGD_WEB_BIND=f"127.0.0.1:{port}", MSGD_ADMIN_USER="admin",
                     MSGD_ADMIN_PASSWORD=PASSWORD, MSGD_WEB_WORKERS="2")


@pytest.mark.slow
def test_run_web_serves_the_api_with_gunicorn(tmp_path: Path) -> None:
    port = free_port()
    env = embedded_env(tmp_path, port)
    msgd("migrate", env=env)
    msgd("config", "load", "examples/config.yaml", env=env)
    key = msgd("token", "create", "billing", env=env).stdout.strip()
    web = StageProcess(["web"], env, tmp_path / "web.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(f"{base}/healthz"), timeout=30, what="gunicorn to answer")
        assert http(f"{base}/readyz")[0] == 200
        event = json.loads((ROOT / "examples/events/low_balance.json").read_text(encoding="utf-8"))
        body = json.dumps(event).encode()
        status, answer = http(f"{base}/api/v1/events", body, {"Content-Type": "application/json"})
        assert status == 401
        auth = {"Content-Type": "application/json", "Authorization": f"Token {key}"}
        status, answer = http(f"{base}/api/v1/events", body, auth)
        assert (status, answer["event_id"]) == (202, event["event_id"]), answer
        status, answer = http(f"{base}/api/v1/events", b"{}", auth)
        assert status == 400 and answer["errors"]
        assert "Booting worker" in web.log_text()
    finally:
        web.stop()


def test_run_web_marks_dead_workers_for_metrics(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """gunicorn is configured in code (no gunicorn.conf.py is read): child_exit is set there."""
    from types import SimpleNamespace

    from gunicorn.app.base import BaseApplication

    from msgd import metrics
    from msgd.web import server

    monkeypatch.setenv("MSGD_DATABASE_URL", db)  # msgd.web.wsgi sets the store up from the environment
    hooks: list[Any] = []
    monkeypatch.setattr(BaseApplication, "run", lambda app: hooks.append(app.cfg.child_exit))
    server.run_gunicorn()
    dead: list[int] = []
    monkeypatch.setattr(metrics, "mark_process_dead", dead.append)
    (hook,) = hooks
    hook(None, SimpleNamespace(pid=4242))
    assert dead == [4242]


def admin_login(base: str, host: str, origin: str) -> tuple[int, Any]:
    """The admin's login form as a browser behind a TLS proxy posts it: https origin, forwarded proto."""
    import requests

    proxy = {"Host": host, "X-Forwarded-Proto": "https"}
    page = requests.get(f"{base}/admin/login/", headers=proxy, timeout=10)
    token = page.cookies["csrftoken"]
    # The cookie is sent back by hand: a client keeps Secure cookies off plain http, and this
    # test talks plain http to gunicorn where the browser would talk https to the proxy.
    answer = requests.post(f"{base}/admin/login/", allow_redirects=False, timeout=10,
                           headers=proxy | {"Origin": origin, "Referer": f"{origin}/admin/login/",
                                            "Cookie": f"csrftoken={token}"},
                           data={"csrfmiddlewaretoken": token, "username": "admin", "password": PASSWORD,
                                 "next": "/admin/"})
    return answer.status_code, page.headers.get("Set-Cookie", "") + "; " + answer.headers.get("Set-Cookie", "")


@pytest.mark.slow
def test_admin_behind_a_tls_proxy(tmp_path: Path) -> None:
    """MSGD_WEB_HTTPS=1: forms posted from the https site are accepted and cookies are Secure;
    MSGD_WEB_TRUSTED_ORIGINS: the origin is accepted even when the proxy does not pass the Host on."""
    port = free_port()
    env = embedded_env(tmp_path, port) | {"MSGD_WEB_HTTPS": "1", "MSGD_WEB_ALLOWED_HOSTS": "msgd.example.net,127.0.0.1",
                                           "MSGD_WEB_TRUSTED_ORIGINS": "https://msgd.example.net"}
    msgd("migrate", env=env)
    web = StageProcess(["web"], env, tmp_path / "web.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(f"{base}/healthz"), timeout=30, what="gunicorn to answer")
        status, cookies = admin_login(base, "msgd.example.net", "https://msgd.example.net")
        assert status == 302, "login from the https site was refused"
        assert "sessionid=" in cookies and cookies.count("Secure") >= 2, cookies  # csrftoken and sessionid
        status, _ = admin_login(base, f"127.0.0.1:{port}", "https://msgd.example.net")  # Host not passed on
        assert status == 302
        status, _ = admin_login(base, f"127.0.0.1:{port}", "https://evil.example")
        assert status == 403
    finally:
        web.stop()


# -- the browser -----------------------------------------------------------------------------------
def chromium(lang: str) -> Iterator[Any]:
    """Headless Chromium asking for ``lang`` first (its Accept-Language, as a person's browser)."""
    need(os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER),
         "Chromium and chromedriver (apt-get install chromium chromium-driver; make system-deps)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    accept = {"en": "en-US,en", "ru": "ru-RU,ru"}[lang]
    profile = tempfile.mkdtemp(prefix="msgd-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={profile}", "--window-size=1280,900", f"--lang={accept.split(',')[0]}",
                 f"--accept-lang={accept}"):
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"intl.accept_languages": accept})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from chromium("en")


@pytest.fixture
def browser_ru() -> Iterator[Any]:
    """A Russian operator's browser: the admin answers in Russian."""
    yield from chromium("ru")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`msgd run all` in embedded mode with the example configuration: (the admin's URL, its env)."""
    port = free_port()
    env = embedded_env(tmp_path, port)
    msgd("migrate", env=env)
    msgd("config", "load", "examples/config.yaml", env=env)
    proc = StageProcess(["all"], env, tmp_path / "all.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(f"{base}/readyz"), timeout=30, what="msgd run all to serve the admin")
        yield base, env
    finally:
        proc.stop()


@pytest.fixture
def msgd_all(site: tuple[str, dict[str, str]]) -> str:
    return site[0]


# Staff accounts and rows of another operator in the store of `msgd run all` (argv: user, role, operators).
MAKE_STAFF = """
import datetime as dt, sys, uuid
from msgd import store
store.setup()
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from msgd.store.models import Message, Operator, Template
from msgd.web.models import StaffProfile
name, role, codes = sys.argv[1], sys.argv[2], sys.argv[3:]
north, _ = Operator.objects.get_or_create(code="north", defaults={"name": "Северный"})
Template.objects.get_or_create(name="Тест", defaults=dict(event_type="test_message", channel="sms", body="%(text)s"))
now = dt.datetime.now(dt.UTC)
for code in ("best", "north"):
    Message.objects.get_or_create(event_id=f"old-{code}", defaults=dict(
        id=uuid.uuid4(), event_type="low_balance", operator_code=code, abonent_id="7", channel="sms",
        recipient=f"+7912000000{len(code)}", state="failed", reason=f"gateway refused for {code}",
        created_at=now, updated_at=now))
user = get_user_model().objects.create_user(name, password="THE_PASSWORD", is_staff=True)
if role != "-":
    user.groups.add(Group.objects.get(name=role))
if codes:
    StaffProfile.objects.create(user=user).operators.set(Operator.objects.filter(code__in=codes))
""".replace("THE_PASSWORD", PASSWORD)


# A failed row with every column full (a long reason, a fault class, a phone number): the widest the log gets.
FAILED_ROW = """
import datetime as dt, uuid
from msgd import store
store.setup()
from msgd.store.models import Message
now = dt.datetime.now(dt.UTC)
Message.objects.create(id=uuid.uuid4(), event_id="wide-1", event_type="low_balance", operator_code="best",
    abonent_id="1319", channel="sms", recipient="+79121234567", state="failed", fault="transient-exhausted",
    reason_code="transient.connection_refused", reason="connection refused by the gateway at sms.example: " * 4,
    created_at=now, updated_at=now)
"""

# Whether the change list's last column ends inside the window and its box (nothing scrolled out of sight).
LAST_COLUMN_SHOWN = (
    "var th = document.querySelector('#result_list thead th:last-child').getBoundingClientRect();"
    "var box = document.querySelector('#changelist .results').getBoundingClientRect();"
    "return th.right <= Math.min(window.innerWidth, box.right) + 1;")


def make_staff(env: dict[str, str], name: str, role: str = "-", *operators: str) -> None:
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", MAKE_STAFF, name, role, *operators], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=120)


def browser_login(browser: Any, base: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{base}/admin/login/?next=/admin/")
    browser.find_element(By.ID, "id_username").send_keys(name)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()


@pytest.mark.slow
def test_staff_without_permissions_and_staff_of_one_operator(browser: Any, site: tuple[str, dict[str, str]]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    base, env = site
    make_staff(env, "nobody")
    make_staff(env, "branch", "operator staff", "best")
    wait = WebDriverWait(browser, 30)

    browser_login(browser, base, "nobody")
    wait.until(lambda d: "Site administration" in d.title or "msgd" in d.title)
    assert not browser.find_elements(By.ID, "msgd-actions")  # no tools offered
    for path in ("/admin/tools/test-message/", "/admin/tools/manual-send/", "/admin/tools/parking/"):
        browser.get(f"{base}{path}")
        assert "403" in browser.page_source or "Forbidden" in browser.page_source, path
    browser.delete_all_cookies()

    browser_login(browser, base, "branch")
    wait.until(lambda d: d.find_element(By.ID, "msgd-actions"))
    browser.get(f"{base}/admin/msgd/message/")
    listing = wait.until(lambda d: d.find_element(By.ID, "result_list")).text
    assert "gateway refused for best" in listing and "north" not in listing
    browser.get(f"{base}/admin/tools/test-message/")
    operators = [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "id_operator")).options]
    assert operators == ["best"]
    Select(browser.find_element(By.ID, "id_channel")).select_by_value("sms")
    browser.find_element(By.ID, "id_recipient").send_keys("+79121234567")
    browser.find_element(By.ID, "id_text").send_keys("Проверка филиала")
    browser.find_element(By.NAME, "send").click()
    wait.until(lambda d: "final state" in d.find_element(By.ID, "event-progress").text)
    assert [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#event-messages td.state")] == ["sent"]


@pytest.mark.slow
def test_main_flow_in_a_browser(browser_ru: Any, site: tuple[str, dict[str, str]], msgd_all: str,
                                tmp_path: Path) -> None:
    """The manual's quick start in Russian, as a Russian operator's Chromium asks for it
    (the screenshots of the README are taken here)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    browser = browser_ru
    shots = SCREENSHOTS if os.environ.get("MSGD_SCREENSHOTS") == "1" else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))

    def shot(name: str) -> None:
        browser.save_screenshot(str(shots / f"{name}.png"))

    # log in
    browser.get(f"{msgd_all}/admin/")
    browser.find_element(By.ID, "id_username").send_keys("admin")
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(lambda d: d.find_element(By.ID, "msgd-actions"))
    assert browser.execute_script("return document.documentElement.lang") == "ru"
    index = browser.find_element(By.ID, "content").text
    assert "Журнал сообщений" in index and "Отправить тестовое сообщение" in index, index
    assert "Шаблоны сообщений" in index and "Операторы связи" in index, index
    shot("index")

    # create a template (global) for test messages: the event type and channel are choices, a
    # variable is inserted with a click, the unsaved draft is previewed, leaving it unsaved warns
    browser.get(f"{msgd_all}/admin/msgd/template/add/")
    # whether leaving now would ask first: the page's beforeunload handler, asked as the browser asks it
    leaving_asks = ("var e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e);"
                    " return e.defaultPrevented;")
    assert browser.execute_script(leaving_asks) is False  # nothing typed yet
    browser.find_element(By.ID, "id_name").send_keys("Проверка связи")
    Select(browser.find_element(By.ID, "id_event_type_0")).select_by_value("test_message")
    assert not browser.find_element(By.ID, "id_event_type_1").is_displayed()  # typed only for "other"
    Select(browser.find_element(By.ID, "id_channel")).select_by_value("sms")
    browser.find_element(By.ID, "id_subject").send_keys("Тест")
    body_field = browser.find_element(By.ID, "id_body")
    body_field.send_keys("Тест: %(text)s (")
    shown = browser.find_element(By.CSS_SELECTOR, "#msgd-variables table.msgd-vars:not([hidden])")
    assert shown.get_attribute("data-event-type") == "test_message"
    shown.find_element(By.CSS_SELECTOR, "button.msgd-var[data-standard='%(operator_name)s']").click()
    body_field.send_keys(")")
    assert body_field.get_attribute("value") == "Тест: %(text)s (%(operator_name)s)"
    form_text = browser.find_element(By.ID, "content").text
    for term in ("Текст заголовка", "Текст шаблона", "Отправлять сообщение", "Тип отправки", "Статус абонента"):
        assert term in form_text, term
    shot("template-form")
    # nothing of the body or the variables is cut off by their row (it hides what overflows)
    clipped = browser.execute_script(
        "var row = document.querySelector('.form-row.field-body').getBoundingClientRect();"
        "return ['id_body', 'msgd-variables'].filter(function (id) {"
        "  var r = document.getElementById(id).getBoundingClientRect();"
        "  return r.right > row.right + 1 || r.bottom > row.bottom + 1; });")
    assert clipped == [], clipped
    browser.find_element(By.ID, "draft-preview-button").click()
    draft = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#draft-preview-result #preview-body"))
    assert draft.text == "Тест: Проверка отправки сообщений (ООО Лучший провайдер)"
    # leaving the page with the draft unsaved asks first (the preview did not count as leaving)
    assert browser.execute_script(leaving_asks) is True
    browser.find_element(By.NAME, "_continue").click()  # saving leaves without a question
    preview_link = wait.until(lambda d: d.find_element(By.ID, "preview-link"))
    assert browser.execute_script(leaving_asks) is False  # the saved form, unchanged

    # preview with the sample event
    preview_link.click()
    body = wait.until(lambda d: d.find_element(By.ID, "preview-body"))
    assert body.text == "Тест: Проверка отправки сообщений (ООО Лучший провайдер)"
    shot("template-preview")

    # send a test message; the page refreshes until the message has its final state
    browser.get(f"{msgd_all}/admin/tools/test-message/")
    Select(browser.find_element(By.ID, "id_operator")).select_by_value("best")
    Select(browser.find_element(By.ID, "id_channel")).select_by_value("sms")
    browser.find_element(By.ID, "id_recipient").send_keys("+79121234567")
    browser.find_element(By.ID, "id_text").send_keys("Проверка из браузера")
    shot("test-message")
    browser.find_element(By.NAME, "send").click()
    wait.until(lambda d: d.find_element(By.ID, "event-progress").get_attribute("data-done") == "1")
    assert "итоговый статус" in browser.find_element(By.ID, "event-progress").text
    cells = browser.find_elements(By.CSS_SELECTOR, "#event-messages td.state")
    assert [(td.get_attribute("data-state"), td.text) for td in cells] == [("sent", "отправлено")]
    shot("test-message-status")

    # find it in the message log, with its attempts; the log fits a 1366 px screen
    browser.set_window_size(1366, 900)
    browser.find_element(By.LINK_TEXT, "Найти в журнале сообщений").click()
    wait.until(lambda d: "+79121234567" in d.find_element(By.ID, "result_list").text)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"), \
        "the message log scrolls sideways at 1366 px"
    shot("message-log")
    browser.find_element(By.CSS_SELECTOR, "#result_list tbody tr th a, #result_list tbody tr td a").click()
    wait.until(lambda d: "Тест: Проверка из браузера" in d.find_element(By.ID, "content").text)
    shot("message-detail")
    # the whole log with its widest row: every column in sight, a phone number on one line
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", FAILED_ROW], env=site[1], cwd=ROOT, check=True, capture_output=True,
                   timeout=120)
    browser.get(f"{msgd_all}/admin/msgd/message/")
    wait.until(lambda d: "connection refused" in d.find_element(By.ID, "result_list").text)
    assert browser.execute_script(LAST_COLUMN_SHOWN), "the log's last column is out of sight at 1366 px"
    assert browser.execute_script("return Array.from(document.querySelectorAll('#result_list td.field-to span'))"
                                  ".every(function (s) { return s.getClientRects().length === 1; })")
    # the SMS form, generated from the SMS settings model: only SMS settings; choosing a preset shows its
    # values as the empty fields' placeholders; secrets are password fields, never shown, marked set or not
    browser.get(f"{msgd_all}/admin/msgd/channelsettings/")
    wait.until(lambda d: d.find_element(By.ID, "result_list"))
    assert browser.execute_script(LAST_COLUMN_SHOWN), "the channel list's balance is out of sight at 1366 px"
    browser.find_element(
        By.XPATH, "//table[@id='result_list']//tr[td[contains(@class, 'field-channel')][text()='sms']]//a").click()
    wait.until(lambda d: d.find_element(By.ID, "id_setting_preset"))
    assert not browser.find_elements(By.ID, "id_setting_vapid_private_key")
    assert not browser.find_elements(By.ID, "id_params")  # no JSON textarea
    url_field = browser.find_element(By.ID, "id_setting_url")
    assert url_field.get_attribute("placeholder") == ""
    Select(browser.find_element(By.ID, "id_setting_preset")).select_by_value("smsc")
    assert url_field.get_attribute("placeholder") == "https://smsc.ru/sys/send.php"
    assert "%login%" in browser.find_element(By.ID, "id_setting_params").get_attribute("placeholder")
    password = browser.find_element(By.ID, "id_setting_password")
    assert password.get_attribute("type") == "password" and password.get_attribute("value") == ""
    assert password.get_attribute("data-stored") == "not set"
    browser.find_element(By.ID, "id_setting_login").send_keys("best")
    password.send_keys("Browser-Pw-5521")
    browser.execute_script("window.scrollTo(0, 0)")
    shot("channel-settings")
    browser.find_element(By.NAME, "_continue").click()
    # saved: the preset stays chosen, the password is "set" and not on the page
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "ul.messagelist li.success"))
    assert Select(browser.find_element(By.ID, "id_setting_preset")).first_selected_option.get_attribute("value") \
        == "smsc"
    assert browser.find_element(By.ID, "id_setting_password").get_attribute("data-stored") == "set"
    assert "Browser-Pw-5521" not in browser.page_source
    # a refused value is shown at its field (the model's words, in Russian) and nothing is saved
    browser.find_element(By.ID, "id_setting_url").send_keys("ftp://x")
    browser.find_element(By.NAME, "_continue").click()
    error = wait.until(lambda d: d.find_element(By.ID, "id_setting_url_error"))
    assert "не адрес http(s)" in error.text
