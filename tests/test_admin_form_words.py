"""The admin's forms in the reader's language and all at once: a channel form names every problem
of one save (a bad rate_limit and the login and password its preset needs), the problems of a
channel or template form are shown in Russian to a Russian browser (msgd/problem_words.py),
while ``msgd config load`` keeps its English words."""

from __future__ import annotations

from typing import Any

import pytest

from services.senders.model import SettingsInvalid
from services.senders.sms.settings import SmsSettings
from tests import seed
from tests.test_admin_channel_form import ADD, embedded, errors, form, staff  # noqa: F401 - fixtures


def test_one_save_names_every_problem(staff: Any) -> None:  # noqa: F811
    op = seed.operator()
    page = staff.post(f"{ADD}?channel=sms", form(op, preset="smsc", rate_limit="быстро"))
    assert errors(page) == {
        "setting_rate_limit": ["rate_limit: must be a number, got 'быстро'"],
        "setting_login": ["login: is required by preset smsc (%login% in params: login)"],
        "setting_password": ["password: is required by preset smsc (%password% in params: password)"],
    }


def test_a_refused_preset_decides_nothing_else() -> None:
    """An unknown preset is the one problem: what it would require is not guessed."""
    with pytest.raises(SettingsInvalid) as caught:
        SmsSettings.parse({"preset": "nosuch", "rate_limit": "x"})
    assert [p.loc for p in caught.value.problems] == [("preset",), ("rate_limit",)]


def ru_post(client: Any, url: str, data: Any) -> Any:
    from django.utils import translation

    with translation.override(None):  # the request's language does not stay active after it
        return client.post(url, data, HTTP_ACCEPT_LANGUAGE="ru")


def test_a_russian_browser_reads_the_channel_form_s_problems_in_russian(staff: Any) -> None:  # noqa: F811
    op = seed.operator()
    page = ru_post(staff, f"{ADD}?channel=sms", form(op, preset="smsc", rate_limit="быстро", strip_plus="да",
                                                    max_segments="0"))
    assert errors(page) == {
        "setting_rate_limit": ["rate_limit: должно быть числом, а не 'быстро'"],
        "setting_strip_plus": ["strip_plus: должно быть «да» или «нет» (true или false), а не 'да'"],
        "setting_max_segments": ["max_segments: должно быть не меньше 1, а не '0'"],
        "setting_login": ["login: обязательно для пресета smsc (%login% в параметрах: login)"],
        "setting_password": ["password: обязательно для пресета smsc (%password% в параметрах: password)"],
    }
    page = ru_post(staff, f"{ADD}?channel=sms", form(op, url="ftp://x", params="to=%sms%&text=%text%"))
    assert errors(page) == {"setting_url": [
        "url: 'ftp://x' — не адрес http(s): он должен начинаться с http:// или https:// и имени хоста"]}
    page = ru_post(staff, f"{ADD}?channel=sms", form(op, params="to=%sms%"))
    assert errors(page) == {"setting_url": ["url: обязательно: адрес шлюза (или выберите пресет)"]}


def test_config_load_keeps_its_english_words() -> None:
    from django.utils import translation

    with translation.override("ru"), pytest.raises(SettingsInvalid) as caught:
        SmsSettings.parse({"preset": "smsc", "rate_limit": "быстро"})
    assert str(caught.value).startswith("rate_limit: must be a number, got 'быстро'; login: is required by preset")


def test_a_russian_browser_reads_the_template_s_problems_in_russian(staff: Any) -> None:  # noqa: F811
    from tests.test_web_admin import template_form

    page = ru_post(staff, "/admin/msgd/template/add/", template_form(name="t", body="Скидка 10% для %(name)s"))
    assert errors(page)["body"] == ["body: строка 1, позиция 10: одиночный «%»: знак процента пишется как «%%»"]


@pytest.mark.parametrize(("english", "russian"), [
    ("request_typo: unknown key, did you mean 'request_type'? (known: url, request_type)",
     "request_typo: неизвестный ключ, может быть, 'request_type'? (известные: url, request_type)"),
    ("variable 'nmae' is not in the event (did you mean 'name'?)", "переменной 'nmae' нет в событии (может быть, 'name'?)"),
    ("port: must be a port number 1..65535, got 70000", "port: должно быть номером порта 1..65535, а не 70000"),
    ("on_timeout: 'x' is not one of unknown, retry", "on_timeout: 'x' — не из допустимых значений: unknown, retry"),
    ("a gateway's own words", "a gateway's own words"),
])
def test_the_common_sentences_and_what_stays(english: str, russian: str) -> None:
    from django.utils import translation

    from msgd.problem_words import shown_problem

    with translation.override("ru"):
        assert shown_problem(english) == russian
    with translation.override("en"):
        assert shown_problem(english) == english


# Template syntax a new operator gets wrong (a trial with the manual's %(subscriber_sms)): each is
# refused at the body in Russian, never in the checker's or Django's English.
STANDARD_MISTAKES = {
    "%(subscriber_sms) - телефон": "после «)» в «%(subscriber_sms)» нет буквы: напишите «%(subscriber_sms)s» для текста",
    "Баланс %(balance": "«%(balance» не закрыто скобкой «)»",
    "{% if balance %}минус{% endif %}": "«{%» — синтаксис Django: отметьте для этого шаблона",
    "%s руб.": "в «%s» нет имени переменной",
    "%(balance)5.2": "«%(balance)5.2» не дописано",
    "%(name)q": "неизвестная буква 'q' в «%(name)q»",
    "%()s": "в «%()» нет имени переменной",
}
DJANGO_MISTAKES = {
    "{% if %}x{% endif %}": "условие {% if %} не дописано",
    "{% if balance %}минус": "строка 1: тег 'if' не закрыт: не хватает одного из elif, else, endif",
    "{{ name|nosuch }}": "неизвестный фильтр 'nosuch'",
    "{% load i18n %}": "библиотеки тегов 'i18n' нет: загрузить можно только mathfilters",
    "{% nosuch %}": "строка 1: неизвестный тег 'nosuch'",
    "{% for x in y %}{% endif %}": "строка 1: здесь не ожидался тег 'endif', ожидался 'empty' или 'endfor'",
    "{{ }}": "строка 1: пустые {{ }}",
    "{{ name|default }}": "фильтру default нужно значение",
    "{{ a b }}": "не удалось разобрать ' b' в 'a b'",
    "{{ _x }}": "имена не могут начинаться с подчёркивания: '_x'",
    "{% if a b %}{% endif %}": "в конце условия {% if %} лишнее: 'b'",
    "{% include \"admin/base.html\" %}": "{% include %} в шаблонах сообщений не разрешён",
    "{% for x in %}{% endfor %}": "{% for %} пишется как {% for элемент in список %}",
    "{{ name|upper:1 }}": "фильтр upper не принимает значения",
}


@pytest.mark.parametrize(("body", "django", "words"), [
    *((b, False, w) for b, w in STANDARD_MISTAKES.items()), *((b, True, w) for b, w in DJANGO_MISTAKES.items())])
def test_a_template_mistake_is_named_in_russian(staff: Any, body: str, django: bool, words: str) -> None:  # noqa: F811
    from msgd.store.models import Template
    from services.renderer.django_engine import check_django
    from services.renderer.standard import check_standard
    from tests.test_web_admin import template_form

    english = (check_django if django else check_standard)(body)
    assert english
    fields = {"body": body} | ({"use_django": "on"} if django else {})
    page = ru_post(staff, "/admin/msgd/template/add/", template_form(name="t", **fields))
    (shown,) = errors(page)["body"]
    assert words in shown and english not in shown, shown
    assert not Template.objects.exists()


@pytest.mark.parametrize(("address", "words"), [
    ("noc", "неверный e-mail отправителя 'noc': в адресе e-mail должен быть знак @"),
    ("@best.example", "перед знаком @ должно что-то быть"), ("noc@", "после знака @ должно что-то быть"),
    ("noc.@best.example", "не может быть точки прямо перед знаком @"),
    (".noc@best.example", "адрес e-mail не может начинаться с точки"),
    ("noc@best.example.", "адрес e-mail не может кончаться точкой"),
    ("noc@-best.example", "не может быть дефиса сразу после знака @"),
    ("n oc@best.example", "перед знаком @ недопустимые символы: пробел"),
    ("noc@best_x.example", "после знака @ недопустимые символы: '_'"),
    ("noc@[1.2.3.4]", "IP-адрес в скобках после знака @ здесь не допускается"),
])
def test_a_sender_address_problem_is_in_russian(address: str, words: str) -> None:
    from django.utils import translation

    from msgd.problem_words import shown_problem
    from services.senders.email.address import sender_problem

    problem = sender_problem(address)
    assert problem
    with translation.override("ru"):
        assert words in shown_problem(problem)
    with translation.override("en"):
        assert shown_problem(problem) == problem


def test_a_saved_templates_warnings_read_in_russian(staff: Any) -> None:  # noqa: F811
    """The variables the sample event lacks, warned after a save, were English on a Russian page."""
    from tests.test_web_admin import template_form

    page = ru_post(staff, "/admin/msgd/template/add/", template_form(name="t", body="%(nmae)s %(nosuch)s"))
    assert page.status_code == 302
    shown = [str(m) for m in page.wsgi_request._messages]
    assert any("переменной 'nmae' нет в событии (может быть, 'name'?) (пример examples/events/low_balance.json)" in m
               for m in shown), shown
    assert any("переменной 'nosuch' нет в событии (пример " in m for m in shown), shown


def test_a_broker_that_refuses_is_said_in_russian(staff: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    seed.operator()
    monkeypatch.setenv("MSGD_BROKER_URL", "amqp://guest:secretpw@127.0.0.1:1//")
    page = ru_post(staff, "/admin/tools/test-message/", {"operator": "best", "channel": "sms",
                                                         "recipient": "+79121234567", "text": "Проверка"})
    text = page.content.decode()
    assert "Брокер не принял событие (OperationalError): ничего не отправлено" in text
    assert "did not accept" not in text and "secretpw" not in text
