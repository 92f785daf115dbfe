"""Django templates: the manual's examples, escaping, the sandbox, the compile cache."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.renderer.django_engine import HTML, PLAIN, check_django, compile_django
from services.renderer.render import RenderError, check_template, render

OPERATOR = {"code": "best", "name": "ООО Лучший провайдер", "email": "noc@best.example",
            "timezone": "Europe/Moscow", "smtp_password": "hunter22", "api_token": "t0ken"}


def event(abonent: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    ab: dict[str, Any] = {
        "id": 1319, "name": "Новый абонент", "login": "user1", "contract_number": "10001319",
        "balance": -12.5, "status": "active", "contract_type": "individual", "currency": "руб.",
        "tarif_name": "Анлим 30мб", "total_abonpay": 500, "tarif_abonpay": 450,
        "recomend_pay_sum": 512.5, "enough_to_date": "2026-12-01 00:00:00",
        "contacts": {"sms": "+79121234567", "email": "a@example.net"},
        "abonent_id_users": [{"login": "user1", "gen_pwd": "secret1", "service_type_id": 1},
                             {"login": "tv1", "gen_pwd": "secret2", "service_type_id": 2}],
    }
    ab.update(abonent or {})
    return {"event_id": "e1", "type": "low_balance", "occurred_at": "2026-11-27T10:00:00+03:00",
            "operator": {"code": "best", "name": "Имя из события"}, "abonent": ab,
            "data": {"text": "Плановые работы", "psw_token": "123456", "days_left": 3, **(data or {})}}


def tpl(body: str, subject: str = "", **kw: Any) -> dict[str, Any]:
    return {"id": 12, "name": "Приостановка", "subject": subject, "body": body, "use_django": True, **kw}


def body(template_body: str, ev: dict[str, Any] | None = None, *, html: bool = False) -> str:
    return render(tpl(template_body), ev or event(), OPERATOR, html=html).body


# --- the manual's examples -------------------------------------------------------------

SUSPENDED = ("{% load mathfilters %}Обслуживание по л/с {{ abonent.contract_number }} приостановлено. "
             "Внесите не менее {% if total_abonpay <= BALANCE %}0{% else %}"
             "{{ total_abonpay|sub:BALANCE }}{% endif %} руб.")


@pytest.mark.parametrize(("balance", "total", "owed"), [
    (-12.5, 500, "512.5"),
    (600, 500, "0"),
    (500, 500, "0"),
    ("100.10", "500", "399.90"),
    (450.05, 500.1, "50.05"),
])
def test_manual_suspended_service_example(balance: Any, total: Any, owed: str) -> None:
    ev = event({"balance": balance, "total_abonpay": total})
    assert body(SUSPENDED, ev) == \
        f"Обслуживание по л/с 10001319 приостановлено. Внесите не менее {owed} руб."


def test_manual_slice_date_example() -> None:
    assert body('Денег хватит до {{ enough_to_date|slice:":-9" }}') == "Денег хватит до 2026-12-01"


def test_manual_accounts_loop_example() -> None:
    loop = ("{% for user in abonent.abonent_id_users.all %}\n"
            "{% if user.service_type_id == 1 %}\n"
            "Ваш логин: {{ user.login }}\n"
            "Ваш новый пароль: {{ user.gen_pwd }}\n"
            "{% endif %}\n"
            "{% endfor %}\n")
    assert body(loop) == "Ваш логин: user1\nВаш новый пароль: secret1"


def test_manual_operator_contract_and_text_examples() -> None:
    assert body("{{ operator.name }}") == "ООО Лучший провайдер"
    assert body("{{ Operator.name }}") == "ООО Лучший провайдер"
    assert body("{{ abonent.contract_number }}") == "10001319"
    assert body("{{ text }}") == "Плановые работы"


def test_standard_variables_are_top_level() -> None:
    out = body("{{ name }}|{{ operator_name }}|{{ nontarif_abonpay }}|{{ currecy }}|{{ gen_pwd }}|"
               "{{ abonent_id }}|{{ psw_token }}|{{ days_left }}|{{ BALANCE }}|{{ balance }}")
    assert out == "Новый абонент|ООО Лучший провайдер|50|руб.|secret1|1319|123456|3|-12.5|-12.5"


def test_related_records_behave_like_a_manager() -> None:
    out = body("{{ abonent.abonent_id_users.count }} {{ abonent.abonent_id_users.first.login }} "
               "{{ abonent.abonent_id_users.0.login }} {{ abonent.abonent_id_users.last.login }} "
               "{% for u in abonent.abonent_id_users %}{{ u.login }};{% endfor %} "
               "{{ abonent.contacts.sms }} {% if abonent.abonent_id_users.exists %}есть{% endif %}")
    assert out == "2 user1 user1 tv1 user1;tv1; +79121234567 есть"
    empty = event({"abonent_id_users": []})
    assert body("{% for u in abonent.abonent_id_users.all %}x{% empty %}нет{% endfor %}", empty) == "нет"


def test_money_in_django_rounds_half_up() -> None:
    ev = event({"balance": 2.675, "recomend_pay_sum": -0.4})
    assert body("{{ balance|floatformat:2 }} {{ recomend_pay_sum|floatformat:0 }}", ev) == "2.68 0"


def test_missing_variables_render_empty() -> None:
    assert body("[{{ abonent.nonexistent }}][{{ nothing.at.all }}][{{ nothing|default:'нет' }}]") == \
        "[][][нет]"


# --- escaping ---------------------------------------------------------------------------

TRICKY = "O'Brien & \"Sons\" <ООО> 🚀"


def test_plain_text_channels_are_never_escaped() -> None:
    ev = event({"name": TRICKY}, {"text": "a < b && c > d"})
    out = render(tpl("{{ abonent.name }}: {{ text }}", subject="Для {{ name }}"), ev, OPERATOR)
    assert (out.subject, out.body, out.html) == (f"Для {TRICKY}", f"{TRICKY}: a < b && c > d", None)
    assert render(tpl("{{ name }}"), ev, OPERATOR, html=True).body == TRICKY  # not HTML: plain e-mail


def test_html_email_is_escaped_and_has_a_text_part() -> None:
    ev = event({"name": TRICKY})
    t = tpl("{% load mathfilters %}\n<html><body><p>Здравствуйте, {{ abonent.name }}!</p>"
            "<p>Внесите {{ total_abonpay|sub:BALANCE }} руб.<br>Оператор: {{ operator.name }}</p>"
            "<ul><li>{{ text }}</li></ul></body></html>",
            subject="{{ abonent.name }}: баланс")
    out = render(t, ev, OPERATOR, html=True)
    assert out.subject == f"{TRICKY}: баланс"
    assert out.html is not None and out.html.startswith("<html>")
    assert "O&#x27;Brien &amp; &quot;Sons&quot; &lt;ООО&gt; 🚀" in out.html
    assert TRICKY not in out.html
    assert out.body == (f"Здравствуйте, {TRICKY}!\n\nВнесите 512.5 руб.\n"
                        "Оператор: ООО Лучший провайдер\n\n- Плановые работы")


def test_safe_filter_is_the_operators_explicit_choice() -> None:
    ev = event(data={"text": "<b>важно</b>"})
    out = render(tpl("<p>{{ text|safe }} {{ text }}</p>"), ev, OPERATOR, html=True)
    assert out.html == "<p><b>важно</b> &lt;b&gt;важно&lt;/b&gt;</p>"


# --- sandbox ----------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "fragment"), [
    ('{% include "/etc/passwd" %}', "{% include %} is not allowed"),
    ('{% extends "base.html" %}', "{% extends %} is not allowed"),
    ("{% debug %}", "{% debug %} is not allowed"),
    ("{% url 'admin:index' %}", "{% url %} is not allowed"),
    ("{% load static %}{% static 'x' %}", "'static' is not a registered tag library"),
    ("{% load i18n %}", "'i18n' is not a registered tag library"),
    ("{{ abonent._secret }}", "may not begin with underscores"),
    ("{{ abonent.__class__ }}", "may not begin with underscores"),
    ("{% if x %}да", "Unclosed tag on line 1: 'if'"),
    ("{{ x|nosuchfilter }}", "Invalid filter: 'nosuchfilter'"),
    ("{% nosuchtag %}", "Invalid block tag on line 1: 'nosuchtag'"),
])
def test_sandbox_refuses_at_compile_time(source: str, fragment: str) -> None:
    problem = check_django(source)
    assert problem is not None and fragment in problem, problem
    assert check_template(tpl(source)) == f"body: {problem}"
    with pytest.raises(RenderError, match=r'^template "Приостановка" \(id 12\): '):
        render(tpl(source), event({"_secret": "x"}), OPERATOR)


def test_mathfilters_is_the_only_loadable_library() -> None:
    assert check_django("{% load mathfilters %}{{ 3|sub:1 }}{{ 2|mul:3 }}") is None
    assert check_django("{% load sub from mathfilters %}{{ 3|sub:1 }}") is None
    assert PLAIN.autoescape is False and HTML.autoescape is True


def test_templates_cannot_mutate_the_event_or_see_operator_secrets() -> None:
    ev = event()
    before = copy.deepcopy(ev)
    out = body("[{{ abonent.abonent_id_users.clear }}{{ abonent.clear }}{{ abonent.popitem }}"
               "{{ abonent.contacts.clear }}{{ operator.smtp_password }}{{ operator.api_token }}]"
               "{{ abonent.abonent_id_users.count }}", ev)
    assert out == "[]2"
    assert ev == before
    assert "hunter22" not in body("{{ operator }}{% for k, v in operator.items %}{{ k }}={{ v }};{% endfor %}")


def test_arithmetic_failure_is_a_render_error() -> None:
    with pytest.raises(RenderError, match=r"\(id 12\): rendering failed: division by zero"):
        body("{% load mathfilters %}{{ balance|div:0 }}")


# --- cache ------------------------------------------------------------------------------

def test_compiled_templates_are_cached_by_source() -> None:
    assert compile_django("{{ text }} кэш") is compile_django("{{ text }} кэш")
    t = tpl("v1 {{ text }}")
    assert render(t, event(), OPERATOR).body == "v1 Плановые работы"
    t["body"] = "v2 {{ text }}"  # the operator edited the template: same id, new source
    assert render(t, event(), OPERATOR).body == "v2 Плановые работы"
    hits = compile_django.cache_info().hits
    assert render(t, event(), OPERATOR).body == "v2 Плановые работы"
    assert compile_django.cache_info().hits == hits + 1


def test_a_changed_operator_is_seen_by_the_next_render() -> None:
    """The operator's fields are kept between renders (services/renderer/context.py): a changed
    configuration (a refresh gives a new snapshot) shows its new values, and the old come back."""
    source = "{{ operator.name }}|{{ Operator.email }}|{{ operator_name }}|{{ currency }}"
    ev = event({"currency": None})
    del ev["abonent"]["currency"]
    first = {**OPERATOR, "currency": "руб."}
    changed = {**first, "name": "ООО Новое имя", "email": "new@best.example", "currency": "₸"}
    assert body(source, ev) == "ООО Лучший провайдер|noc@best.example|ООО Лучший провайдер|"
    assert render(tpl(source), ev, first).body == "ООО Лучший провайдер|noc@best.example|ООО Лучший провайдер|руб."
    assert render(tpl(source), ev, changed).body == "ООО Новое имя|new@best.example|ООО Новое имя|₸"
    assert render(tpl(source), ev, first).body == "ООО Лучший провайдер|noc@best.example|ООО Лучший провайдер|руб."
    standard = {**tpl("%(operator_name)s %(currency)s"), "use_django": False}
    assert render(standard, ev, changed).body == "ООО Новое имя ₸"
    ev["operator"]["name"] = "Из события"  # the event's operator also changes: stored fields still win
    assert render(tpl(source), ev, {**changed, "name": ""}).body == "Из события|new@best.example|Из события|₸"


def test_operator_fields_of_equal_text_but_other_types_are_kept_apart() -> None:
    """1, 1.0 and True compare equal; the kept operator tells them apart (they print differently)."""
    for value, shown in ((1, "1"), (1.0, "1.0"), (True, "True"), (1, "1")):
        assert render(tpl("{{ operator.warn_days }}"), event(), {**OPERATOR, "warn_days": value}).body == shown


@pytest.mark.parametrize(("source", "name"), [
    ('{{ abonent.name|rjust:"100000000" }}', 'rjust:"100000000"'),
    ('{{ abonent.name|ljust:"5000" }}', 'ljust:"5000"'),
    ('{{ abonent.name|center:"1001" }}', 'center:"1001"'),
    ('{{ abonent.name|stringformat:"100000000s" }}', 'stringformat:"100000000s"'),
    ('{{ abonent.balance|floatformat:"100000" }}', 'floatformat:"100000"'),
    ("{% lorem 100000000 w %}", 'lorem:"100000000"'),
    ('{% for c in abonent.name|rjust:"100000000" %}{% endfor %}', 'rjust:"100000000"'),
])
def test_a_width_or_count_over_1000_fails_the_message_instead_of_building_it(source: str, name: str) -> None:
    """`{% for c in name|rjust:"100000000" %}` kept a renderer on one message for 30 s (the standard
    syntax refuses a width over 1000: %(name)100000000s); now the same limit fails it at once."""
    with pytest.raises(RenderError) as failed:
        body(source)
    assert str(failed.value).endswith(f'rendering failed: {name} is over 1000 (a width, precision or count;'
                                      " the standard syntax's limit too): no message needs it")


def test_mathfilters_mul_and_mod_compute_numbers_and_never_repeat_text() -> None:
    """mathfilters fell back to Python's `*` and `%` on text: "x"|mul:100000000 was 100 MB."""
    assert body('{% load mathfilters %}{{ "x"|mul:100000000 }}|{{ "%100000000s"|mod:"x" }}|') == "||"
    assert body('{% load mathfilters %}{{ 2|mul:3 }} {{ "2.5"|mul:2 }} {{ 7|mod:3 }} {{ 10|div:4 }}') == "6 5.0 1 2.5"
    assert body('{{ abonent.name|rjust:"1000"|length }} {{ 2.5|floatformat }} {% lorem 3 w %}') == (
        "1000 2.5 lorem ipsum dolor")


def test_loops_that_run_past_the_budget_fail_the_message() -> None:
    """Nested loops over an event's lists had no bound (three over 2,000 accounts: 8 * 10^9
    iterations, hours); two over 400 (160,000) now fail, one over all of them still renders."""
    accounts = [{"login": f"u{i}", "service_type_id": 1} for i in range(400)]
    ev = event({"abonent_id_users": accounts})
    loop = "{% for u in abonent.abonent_id_users.all %}"
    assert body(loop + "{{ u.login }};{% endfor %}", ev).count(";") == 400
    with pytest.raises(RenderError) as failed:
        body(loop * 2 + "x" + "{% endfor %}" * 2, ev)
    assert str(failed.value).endswith("rendering failed: the template's loops ran more than 100,000 times in one"
                                      " message (nested {% for %} over the event's lists?)")
