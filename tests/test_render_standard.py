"""Standard (%-style) templates: the manual's variables and examples, rounding, errors."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest

from services.renderer.context import Money, build_context
from services.renderer.render import RenderError, check_template, render
from services.renderer.standard import check_standard, render_standard, variables

OPERATOR = {"code": "best", "name": "ООО Лучший провайдер", "email": "noc@best.example",
            "timezone": "Europe/Moscow"}


def event(abonent: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
          **top: Any) -> dict[str, Any]:
    ab: dict[str, Any] = {
        "id": 1319, "name": "Новый абонент", "login": "user1", "contract_number": "10001319",
        "balance": -12.5, "status": "active", "contract_type": "individual", "currency": "руб.",
        "tarif_name": "Анлим 30мб", "plan_comment": "30 Мбит/с", "allow_limit": 0,
        "total_abonpay": 500, "tarif_abonpay": 450, "recomend_pay_sum": 512.5,
        "enough_to_date": "2026-12-01 00:00:00",
        "contacts": {"sms": "+79121234567", "email": "a@example.net"},
        "abonent_id_users": [{"login": "user1", "gen_pwd": "secret1", "service_type_id": 1},
                             {"login": "tv1", "gen_pwd": "secret2", "service_type_id": 2}],
    }
    ab.update(abonent or {})
    ev: dict[str, Any] = {"event_id": "e1", "type": "low_balance",
                          "occurred_at": "2026-11-27T10:00:00+03:00",
                          "operator": {"code": "best", "name": "Имя из события"},
                          "abonent": ab, "data": {"text": "Оплатите", "psw_token": "123456", **(data or {})}}
    ev.update(top)
    return ev


def tpl(body: str, subject: str = "", **kw: Any) -> dict[str, Any]:
    return {"id": 4, "name": "Низкий баланс", "subject": subject, "body": body, "use_django": False, **kw}


def body(template_body: str, ev: dict[str, Any] | None = None, operator: Any = OPERATOR) -> str:
    return render(tpl(template_body), ev or event(), operator).body


# --- the manual's examples -------------------------------------------------------------

PERSONAL = {"next_auto_acount": "2017-11-01 00:00:00", "code1c": "1sTESTcode",
            "activate_date": "2017-10-01 00:00:00", "account_id": 10001319}


def test_manual_personal_data_example_renders_exactly() -> None:
    template = ("Уважаемый Абонент! Ваши персональные данные: ФИО: %(name)s, Дата выставления Акта: "
                "%(next_auto_acount)s, Код в 1С: %(code1c)s, Дата начала предоставления услуг: "
                "%(activate_date)s, Лицевой счет: %(account_id)s, Тариф: %(tarif_name)s, "
                "Оператор связи: %(operator_name)s.")
    ev = event({**PERSONAL, "tarif_name": "Анлим 0мб"})
    assert body(template, ev) == (
        "Уважаемый Абонент! Ваши персональные данные: ФИО: Новый абонент, Дата выставления Акта: "
        "2017-11-01 00:00:00, Код в 1С: 1sTESTcode, Дата начала предоставления услуг: "
        "2017-10-01 00:00:00, Лицевой счет: 10001319, Тариф: Анлим 0мб, "
        "Оператор связи: ООО Лучший провайдер.")


def test_manual_personal_data_example_with_quotes() -> None:
    template = ('Уважаемый Абонент! Ваши персональные данные: ФИО: "%(name)s", Дата выставления Акта: '
                '"%(next_auto_acount)s", Код в 1С: "%(code1c)s", Дата начала предоставления услуг: '
                '"%(activate_date)s", Лицевой счет: %(account_id)s, Тариф: "%(tarif_name)s", '
                'Оператор связи: "%(operator_name)s"')
    assert body(template, event(PERSONAL)) == (
        'Уважаемый Абонент! Ваши персональные данные: ФИО: "Новый абонент", Дата выставления Акта: '
        '"2017-11-01 00:00:00", Код в 1С: "1sTESTcode", Дата начала предоставления услуг: '
        '"2017-10-01 00:00:00", Лицевой счет: 10001319, Тариф: "Анлим 30мб", '
        'Оператор связи: "ООО Лучший провайдер"')


def test_manual_text_template_for_manual_send() -> None:
    assert body("%(text)s", event(data={"text": "Плановые работы 01.12 с 02:00"})) == \
        "Плановые работы 01.12 с 02:00"


MANUAL_VARIABLES = [
    "%(name)s", "%(contract_number)s", "%(balance)s", "%(balance).f", "%(currecy)s", "%(text)s",
    "%(operator_name)s", "%(allow_limit)s", "%(total_abonpay)s", "%(tarif_abonpay)s",
    "%(nontarif_abonpay)s", "%(gen_pwd)s", "%(login)s", "%(tarif_name)s", "%(plan_comment)s",
    "%(recomend_pay_sum)5.2f", "%(recomend_pay_sum_post)5.2f", "%(minimal_pay_sum)5.2f",
    "%(subscriber_name)s", "%(abonent_id)s", "%(subscriber_comment)s", "%(subscriber_email)s",
    "%(subscriber_home)s", "%(enough_to_date)s", "%(psw_token)s",
]


def test_every_variable_the_manual_lists_is_provided() -> None:
    ev = event({"recomend_pay_sum_post": "600", "minimal_pay_sum": 12.5},
               {"subscriber_name": "Иван", "subscriber_sms": "+79120000000",
                "subscriber_comment": "подъезд 2", "subscriber_email": "i@example.net",
                "subscriber_home": "ул. Ленина, 1"})
    out = body(" | ".join(MANUAL_VARIABLES) + " | %(subscriber_sms)s", ev)
    assert out == (
        "Новый абонент | 10001319 | -12.5 | -13 | руб. | Оплатите | ООО Лучший провайдер | 0 | 500 | "
        "450 | 50 | secret1 | user1 | Анлим 30мб | 30 Мбит/с | 512.50 | 600.00 | 12.50 | Иван | 1319 | "
        "подъезд 2 | i@example.net | ул. Ленина, 1 | 2026-12-01 00:00:00 | 123456 | +79120000000")


def test_manual_subscriber_sms_without_conversion_is_refused_with_a_fix() -> None:
    problem = check_standard("%(subscriber_sms) - номер телефона абонента")
    assert problem is not None
    assert '"%(subscriber_sms)" has no conversion letter' in problem
    assert 'write "%(subscriber_sms)s"' in problem
    assert check_standard("Телефон: %(subscriber_sms)\nспасибо") is not None
    assert check_standard("Телефон: %(subscriber_sms)") is not None
    for spec in MANUAL_VARIABLES:
        assert check_standard(spec) is None, spec


# --- rounding and numbers ---------------------------------------------------------------

@pytest.mark.parametrize(("balance", "spec", "expected"), [
    (-0.5, "%(balance).f", "-1"),
    (0.5, "%(balance).f", "1"),
    (2.5, "%(balance).f", "3"),
    (-0.4, "%(balance).f", "0"),
    (-12.5, "%(balance).f", "-13"),
    (0.005, "%(balance).2f", "0.01"),
    (2.675, "%(balance).2f", "2.68"),
    (-0.004, "%(balance).2f", "0.00"),
    (-2.675, "%(balance).2f", "-2.68"),
    (1e9, "%(balance).2f", "1000000000.00"),
    (1e9, "%(balance)s", "1000000000.0"),
    (1e9, "%(balance).f", "1000000000"),
    ("12.345", "%(balance).2f", "12.35"),
    ("-0.50", "%(balance).f", "-1"),
    ("12.50", "%(balance)s", "12.50"),
    (" 7 ", "%(balance)5.2f", " 7.00"),
    ("1e9", "%(balance)s", "1000000000"),
    (512.5, "%(balance)5.2f", "512.50"),
    (3.5, "%(balance)5.2f", " 3.50"),
    (-12.5, "%(balance)s", "-12.5"),
    (-0.0, "%(balance)s", "0.0"),
    (-12.5, "%(balance)d", "-12"),
    (-12.5, "%(balance)+08.2f", "-0012.50"),
    (1.5, "%(balance)-8.2f|", "1.50    |"),
    (0.05, "%(balance)+.1f", "+0.1"),
    (0.05, "%(balance) .1f", " 0.1"),
    (2.5, "%(balance)#.0f", "3."),
    (-0.4, "%(balance)#.0f", "0."),
    (1234.5, "%(balance).1e", "1.2e+03"),
    (0.1 + 0.2, "%(balance).2f", "0.30"),
    (1, "%(balance)f", "1.000000"),
    (-12.5, "%(BALANCE).f", "-13"),
])
def test_money_formatting(balance: Any, spec: str, expected: str) -> None:
    assert body(spec, event({"balance": balance})) == expected


def test_money_type_rounds_half_up_everywhere() -> None:
    assert f"{Money(2.675):.2f}" == "2.68"
    assert f"{Money('-0.5'):.0f}" == "-1"
    assert f"{Money('-0.004'):.2f}" == "0.00"
    assert str(Money(-0.0)) == "0.0"
    assert str(Money("1E+3")) == "1000"
    assert Money("500.1") - Money("450.05") == Money("50.05")


def test_non_money_numeric_strings_stay_text() -> None:
    ev = event({"contract_number": "00123"}, {"psw_token": "000123"})
    assert body("%(contract_number)s %(psw_token)s", ev) == "00123 000123"


def test_percent_literal_and_python_compatibility() -> None:
    ctx = {"name": "Абонент", "n": 65, "a(b)c": "вложенное"}
    for template in ["%(name)s", "%(name)10s|", "%(name)-10s|", "%(name).3s", "%(n)05d", "%(n)x",
                     "%(n)X", "%(n)+d", "%(n) d", "%(n)ld", "%(name)r", "%(n)c", "%(a(b)c)s",
                     "%(n)#o", "100%% оплата %(n)i", "%(n)u%%", "%(n).3e", "%(n)g", "%(n)s %(n)s"]:
        assert render_standard(template, ctx) == template % ctx, template
    assert body("Скидка 10%% для %(login)s") == "Скидка 10% для user1"


# --- derived variables -------------------------------------------------------------------

def test_currecy_and_currency_fill_each_other() -> None:
    assert body("%(currecy)s/%(currency)s", event({"currency": "руб."})) == "руб./руб."
    ab = event()
    del ab["abonent"]["currency"]
    ab["abonent"]["currecy"] = "тг"
    assert body("%(currecy)s/%(currency)s", ab) == "тг/тг"
    del ab["abonent"]["currecy"]
    assert body("%(currency)s", ab, {**OPERATOR, "currency": "сом"}) == "сом"
    with pytest.raises(RenderError, match="variable 'currecy' is not in the event"):
        body("%(currecy)s", ab)


def test_nontarif_abonpay() -> None:
    assert body("%(nontarif_abonpay)s") == "50"
    assert body("%(nontarif_abonpay)s", event({"total_abonpay": 500.1, "tarif_abonpay": 450.05})) == "50.05"
    assert body("%(nontarif_abonpay).2f",
                event({"total_abonpay": "500.10", "tarif_abonpay": "450"})) == "50.10"
    assert body("%(nontarif_abonpay)s", event({"nontarif_abonpay": 7})) == "7"
    ev = event()
    del ev["abonent"]["tarif_abonpay"]
    with pytest.raises(RenderError, match="nontarif_abonpay"):
        body("%(nontarif_abonpay)s", ev)


def test_gen_pwd_is_always_the_first_accounts() -> None:
    assert body("%(gen_pwd)s") == "secret1"
    ev = event()
    ev["abonent"]["abonent_id_users"][0]["gen_pwd"] = None  # changed in the personal cabinet
    with pytest.raises(RenderError, match="variable 'gen_pwd' is not in the event"):
        body("%(gen_pwd)s", ev)
    assert body("%(gen_pwd)s", event({"gen_pwd": "given"})) == "given"
    assert body("%(gen_pwd)s", event(data={"gen_pwd": "reset"})) == "reset"


def test_operator_name_stored_then_event_then_manual_default() -> None:
    assert body("%(operator_name)s") == "ООО Лучший провайдер"
    assert body("%(operator_name)s", operator={"code": "best", "name": ""}) == "Имя из события"
    assert body("%(operator_name)s", event(operator={"code": "best"}), None) == "Лучший провайдер"
    stored = SimpleNamespace(code="best", name="Филиал Север", email="", timezone="UTC")
    assert body("%(operator_name)s", operator=stored) == "Филиал Север"


def test_abonent_id_data_wins_and_contacts_fill_in() -> None:
    assert body("%(abonent_id)s %(sms)s %(email)s") == "1319 +79121234567 a@example.net"
    assert body("%(abonent_id)s", event(data={"abonent_id": 77})) == "77"
    assert body("%(name)s", event(data={"name": "Из события"})) == "Из события"


def test_context_excludes_contacts_and_related_lists() -> None:
    ctx = build_context(event(), OPERATOR)
    assert "contacts" not in ctx and "abonent_id_users" not in ctx
    assert isinstance(ctx["balance"], Money) and ctx["BALANCE"] == ctx["balance"]
    assert isinstance(ctx["total_abonpay"], Money) and str(ctx["total_abonpay"]) == "500"


# --- escaping ---------------------------------------------------------------------------

TRICKY = "O'Brien & \"Sons\" <ООО> 🚀"


def test_plain_text_is_never_escaped() -> None:
    ev = event({"name": TRICKY}, {"text": "a < b && c > d"})
    out = render(tpl("%(name)s: %(text)s", subject="Для %(name)s"), ev, OPERATOR, html=True)
    assert out.body == f"{TRICKY}: a < b && c > d"
    assert out.subject == f"Для {TRICKY}"
    assert out.html is None
    raw = render(tpl("<p>%(name)s</p>"), ev, OPERATOR)  # SMS gets what the operator wrote
    assert raw.body == f"<p>{TRICKY}</p>" and raw.html is None


def test_html_email_escapes_values_and_gets_a_text_part() -> None:
    ev = event({"name": TRICKY})
    out = render(tpl("<p>Здравствуйте, %(name)s!</p><p>Баланс: %(balance).2f %(currecy)s<br>Код: "
                     "<a href=\"https://lk.example/reset?c=%(psw_token)s\">сбросить</a></p>"),
                 ev, OPERATOR, html=True)
    assert out.html is not None
    assert "O&#x27;Brien &amp; &quot;Sons&quot; &lt;ООО&gt; 🚀" in out.html
    assert out.body == (f"Здравствуйте, {TRICKY}!\n\nБаланс: -12.50 руб.\n"
                        "Код: сбросить (https://lk.example/reset?c=123456)")


# --- errors -------------------------------------------------------------------------------

def test_missing_variable_names_variable_and_template() -> None:
    with pytest.raises(RenderError) as info:
        body("Договор %(contract_numbr)s")
    assert str(info.value) == ('template "Низкий баланс" (id 4): variable \'contract_numbr\' is not in '
                               "the event (did you mean 'contract_number'?)")
    assert info.value.variable == "contract_numbr"
    with pytest.raises(RenderError, match=r'^template "Низкий баланс" \(id 4\) subject: variable \'nope\''):
        render(tpl("ok", subject="%(nope)s"), event(), OPERATOR)


def test_type_mismatch_is_reported_without_the_value() -> None:
    with pytest.raises(RenderError) as info:
        body("%(name)d")
    assert str(info.value) == ('template "Низкий баланс" (id 4): variable \'name\' is text, '
                               "but %(name)d needs a number")
    with pytest.raises(RenderError) as info:
        body("%(gen_pwd).2f")
    assert "secret1" not in str(info.value)


@pytest.mark.parametrize(("source", "fragment"), [
    ("Баланс %(name", '"%(name" is not closed with ")"'),
    ("%(x)q", "unsupported conversion character 'q'"),
    ("Скидка 10% всем", 'a lone "%": write "%%"'),
    ("100%", 'a lone "%"'),
    ("%s", "has no variable name"),
    ("%()s", "has no variable name"),
    ("%(x)*s", '"*" widths'),
    ("%(x)5", "is incomplete"),
    ("%(x)99999s", "width or precision over 1000"),
])
def test_syntax_errors_found_without_data(source: str, fragment: str) -> None:
    problem = check_standard(source)
    assert problem is not None and fragment in problem, problem


def test_syntax_error_position_and_render_refusal() -> None:
    assert check_standard("ok\nБаланс %(name") == 'line 2, column 8: "%(name" is not closed with ")"'
    with pytest.raises(RenderError, match=r'^template "Низкий баланс" \(id 4\): line 1, column 1'):
        body("%(x)q")


def test_check_template_accepts_dicts_and_objects() -> None:
    assert check_template(tpl("%(name)s", subject="%(login)s")) is None
    assert check_template(SimpleNamespace(id=1, name="x", subject="", body="%(balance).2f",
                                          use_django=False)) is None
    problem = check_template(tpl("ok", subject="%(name"))
    assert problem is not None and problem.startswith("subject: line 1, column 1")
    problem = check_template({"body": "{% if x %}да{% endif %}", "use_django": False})
    assert problem is not None and 'turn on "use Django templating"' in problem


def test_subject_is_one_line_and_object_templates_render() -> None:
    t = SimpleNamespace(id=7, name="n", subject="Баланс\n%(balance).2f ",
                        body="\n  %(login)s\n\n%(text)s \n\n", use_django=False)
    out = render(t, event(), OPERATOR)
    assert (out.subject, out.body, out.html) == ("Баланс -12.50", "  user1\n\nОплатите ", None)


def test_rendering_does_not_touch_the_event() -> None:
    ev = event()
    before = copy.deepcopy(ev)
    body(" ".join(MANUAL_VARIABLES[:12]), ev)
    assert ev == before


def test_variables_lists_names_in_order() -> None:
    assert variables("%(a)s %(b).2f %(a)d %%") == ["a", "b"]
