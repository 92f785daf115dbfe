"""Gateway and server addresses a new operator types, judged when saved (a trial of the admin):
an SMS gateway URL with a space in its host or path, a port of 99999 or 0, an SMTP server written
as a URL or with its port were saved and failed only when a message was sent. Each is refused at
its field, in Russian for a Russian browser, by the one settings model ``msgd config load`` uses
too; and every refusal of the channels' settings models reads in Russian."""

from __future__ import annotations

from typing import Any

import pytest

from services.senders.email.settings import EmailSettings
from services.senders.model import SettingsInvalid
from services.senders.push.settings import PushSettings
from services.senders.sms.settings import SmsSettings
from services.senders.telegram.settings import TelegramSettings
from tests import seed
from tests.test_admin_channel_form import ADD, embedded, errors, form, staff  # noqa: F401 - fixtures
from tests.test_admin_form_words import ru_post

BAD_URLS = {
    "http://sms example.ru/send": "'http://sms example.ru' — не адрес http(s): в нём пробел",
    "http://sms.example.ru/se nd": "'http://sms.example.ru' — не адрес http(s): в нём пробел",
    "http://sms.example.ru\t/send": "в нём пробел или управляющий символ",
    "http://sms.example.ru:99999/send": "'http://sms.example.ru' — не адрес http(s): порт должен быть числом 1..65535",
    "http://sms.example.ru:0/send": "порт должен быть числом 1..65535",
    "http://sms.example.ru:80:80/send": "порт должен быть числом 1..65535",
    "http://<b>x</b>/send": "имя хоста неверно",
    "http://sms..example.ru/send": "имя хоста неверно",
    "sms.example.ru/send": "должен начинаться с http:// или https://",
}
GOOD_URLS = ["http://шлюз.рф/send?a=1", "https://smsc.ru/sys/send.php", "http://[::1]:8080/x",
             "http://127.0.0.1:13013/cgi-bin/send", "http://sms_gw.local/send?to=%sms%"]
BAD_HOSTS = ["smtp yandex.ru", "http://smtp.yandex.ru", "smtp.yandex.ru:465", "<script>alert(1)</script>",
             "smtp..yandex.ru"]
GOOD_HOSTS = ["smtp.yandex.ru", "smtp.яндекс.рф", "localhost", "10.0.0.1", "::1", "mail_relay"]


@pytest.mark.parametrize(("url", "words"), BAD_URLS.items())
def test_a_gateway_url_that_cannot_be_requested_is_refused_at_its_field(
        staff: Any, url: str, words: str) -> None:  # noqa: F811
    from msgd.store.models import ChannelSettings

    op = seed.operator()
    page = ru_post(staff, f"{ADD}?channel=sms", form(op, url=url, password="S3CRET-pw"))
    shown = errors(page)
    assert any(words in e for e in shown.get("setting_url", [])), shown
    assert not ChannelSettings.objects.exists()
    assert "S3CRET-pw" not in page.content.decode()
    with pytest.raises(SettingsInvalid):  # msgd config load: the same model
        SmsSettings.parse({"url": url})


@pytest.mark.parametrize("url", GOOD_URLS)
def test_a_gateway_url_that_can_be_requested_is_saved(staff: Any, url: str) -> None:  # noqa: F811
    from msgd.store.models import ChannelSettings

    op = seed.operator()
    page = ru_post(staff, f"{ADD}?channel=sms", form(op, url=url))
    assert page.status_code == 302, errors(page)
    assert ChannelSettings.objects.get().params["url"] == url


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_an_smtp_server_that_is_no_host_name_is_refused_at_its_field(staff: Any, host: str) -> None:  # noqa: F811
    from msgd.store.models import ChannelSettings

    op = seed.operator()
    page = ru_post(staff, f"{ADD}?channel=email", form(op, "email", host=host, login="noc@best.example",
                                                       password="SMTP-S3CRET"))
    shown = errors(page)
    assert any("— не имя сервера: напишите только имя" in e for e in shown.get("setting_host", [])), shown
    assert not ChannelSettings.objects.exists()
    assert "SMTP-S3CRET" not in page.content.decode()
    with pytest.raises(SettingsInvalid):
        EmailSettings.parse({"host": host})


@pytest.mark.parametrize("host", GOOD_HOSTS)
def test_an_smtp_host_name_or_address_is_saved(staff: Any, host: str) -> None:  # noqa: F811
    from msgd.store.models import ChannelSettings

    op = seed.operator()
    page = ru_post(staff, f"{ADD}?channel=email", form(op, "email", host=host))
    assert page.status_code == 302, errors(page)
    assert ChannelSettings.objects.get().params["host"] == host


@pytest.mark.parametrize("proxy", ["http://proxy example.ru:3128", "http://<b>:3128", "ftp://proxy.example.ru"])
def test_a_telegram_proxy_that_is_no_url_is_refused(proxy: str) -> None:
    with pytest.raises(SettingsInvalid) as caught:
        TelegramSettings.parse({"token": "1:abc", "proxy": proxy})
    assert [p.loc for p in caught.value.problems] == [("proxy",)]


# Every kind of refusal the channels' settings models make (beyond those tested elsewhere).
REFUSED = [
    (SmsSettings, {"url": "http://a.ru", "region": "Россия"}),
    (SmsSettings, {"url": "http://a.ru", "success_pattern": "(unclosed"}),
    (SmsSettings, {"url": "http://a.ru", "request_type": "put"}),
    (SmsSettings, {"url": "http://a.ru", "reply_format": "xml"}),
    (SmsSettings, {"preset": "nosuch"}),
    (SmsSettings, {"url": "http://a.ru", "dlr_poll": True, "status_url": "http://a.ru/s"}),
    (SmsSettings, {"url": "http://a.ru", "dedupes_message_id": True}),
    (SmsSettings, {"url": "http://a.ru", "request_type": "rostelecom_json", "encoding": "cp1251",
                   "sender_name": "x", "login": "l", "password": "p"}),
    (SmsSettings, {"url": "http://a.ru", "request_type": "digital_direct_json", "params": "a=b",
                   "sender_name": "x", "password": "p"}),
    (EmailSettings, {"security": "tls"}),
    (EmailSettings, {"login": "x"}),
    (TelegramSettings, {"token": "a b"}),
    (TelegramSettings, {}),
    (TelegramSettings, {"token": "1:a", "proxy": "ftp://x"}),
    (TelegramSettings, {"token": "1:a", "parse_mode": "xml"}),
    (PushSettings, {}),
    (PushSettings, {"vapid_private_key": "garbage", "vapid_subject": "x"}),
]


@pytest.mark.parametrize(("model", "raw"), REFUSED)
def test_every_settings_refusal_reads_in_russian(model: Any, raw: dict[str, Any]) -> None:
    from django.utils import translation

    from msgd.problem_words import shown_problem

    with pytest.raises(SettingsInvalid) as caught:
        model.parse(raw)
    for problem in caught.value.problems:
        english = str(problem)
        with translation.override("ru"):
            russian = shown_problem(english)
        with translation.override("en"):
            assert shown_problem(english) == english
        head = russian.split(": ", 1)[1]  # after the setting's key
        assert russian != english and any("а" <= ch <= "я" for ch in head[:40].lower()), russian


@pytest.mark.parametrize(("raw", "russian"), [
    ({"preset": "smsc"}, "login: обязательно для пресета smsc (%login% в параметрах: login)"),
    ({"url": "http://a.ru", "params": "sig=%md5%&to=%sms%&t=%text%"},
     "password: обязательно для типа запроса post (%md5% в параметрах: md5_key или password)"),
    ({"url": "http://a.ru", "request_type": "rostelecom_json", "sender_name": "x", "password": "p"},
     "login: обязательно для типа запроса rostelecom_json (запрос Ростелеком JSON)"),
])
def test_what_needs_a_missing_setting_reads_in_russian(raw: dict[str, Any], russian: str) -> None:
    """The part in brackets ("%login% in params: login", "the Rostelecom JSON request") was English."""
    from django.utils import translation

    from msgd.problem_words import shown_problem

    with pytest.raises(SettingsInvalid) as caught:
        SmsSettings.parse(raw)
    with translation.override("ru"):
        shown = [shown_problem(str(p)) for p in caught.value.problems]
    assert russian in shown, shown
