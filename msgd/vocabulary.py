"""What a template can answer and say: event types, subscriber statuses, contract types and
the variables of each event type, with the original manual's Russian descriptions.

One list for the admin's template form (choices, the click-to-insert variable panel) and
for the documentation (``python -m msgd.vocabulary`` writes docs/template-variables.md; a
test checks the two agree). Sources: the manual's "Возможные переменные" section
(seed/message-system-doc.ru.txt), the README's event contract and schemas/event.v1.json.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

# Event types billing sends (README "The event contract"): (type, Russian name, English name).
EVENT_TYPES: tuple[tuple[str, str, str], ...] = (
    ("low_balance", "Низкий баланс", _("Low balance")),
    ("blocked", "Блокировка за неуплату", _("Blocked for non-payment")),
    ("days_before_block", "Предупреждение за n дней", _("Warning N days before blocking")),
    ("password_reset", "Сброс пароля", _("Password reset")),
    ("helpdesk_ticket", "Заявка в helpdesk", _("Helpdesk ticket")),
    ("manual", "Ручная отправка", _("Manual send")),
    ("payment_received", "Платёж получен", _("Payment received")),
    ("test_message", "Тестовое сообщение", _("Test message")),
)
# Subscriber statuses billing sends in abonent.status (a template's status filter).
STATUSES: tuple[tuple[str, str, str], ...] = (
    ("active", "Активен", _("Active")),
    ("blocked", "Заблокирован", _("Blocked")),
    ("suspended", "Приостановлен (добровольная блокировка)", _("Suspended at the subscriber's request")),
    ("disabled", "Отключён", _("Disconnected")),
)
CONTRACT_TYPES: tuple[tuple[str, str, str], ...] = (
    ("individual", "Физическое лицо", _("Individual")),
    ("legal", "Юридическое лицо", _("Legal entity")),
)


@dataclass(frozen=True)
class Variable:
    """One template variable: ``name`` in the standard syntax (``%(name)s``, or ``standard``
    when the manual gives a format such as ``%(recomend_pay_sum)5.2f``), its Django form,
    the manual's Russian description and an English one; ``sometimes``: billing sends it only
    when the subscriber has it (a standard template that names it fails without it)."""

    name: str
    ru: str
    en: str
    django: str = ""
    standard: str = ""
    sometimes: bool = False

    @property
    def standard_form(self) -> str:
        return self.standard or f"%({self.name})s"

    @property
    def django_form(self) -> str:
        return self.django or f"{{{{ {self.name} }}}}"

    def description(self) -> str:
        """In the reader's language: the manual's words for Russian, else English."""
        return self.ru if (get_language() or "").startswith("ru") else str(self.en)


def _v(name: str, ru: str, en: str, django: str = "", standard: str = "", sometimes: bool = False) -> Variable:
    return Variable(name, ru, en, django, standard, sometimes)


# Every event about a subscriber carries these (the manual's list, in its order).
SUBSCRIBER = (
    _v("name", "ФИО абонента", _("The subscriber's full name"), "{{ abonent.name }}"),
    _v("contract_number", "номер договора", _("Contract number"), "{{ abonent.contract_number }}"),
    _v("balance", "текущий баланс (%(balance).f — округлённый до целого)",
       _("Current balance (%(balance).f rounds it to a whole number)"), "{{ abonent.balance }}",
       "%(balance).2f"),
    _v("currecy", "валюта, сокращение (например руб.)", _("Currency abbreviation, e.g. руб. (spelt as in the original)")),
    _v("operator_name", "имя оператора связи (по умолчанию «Лучший провайдер»)",
       _("The operator's name"), "{{ operator.name }}"),
    _v("allow_limit", "сумма, которая указана в пороге включения (тариф)",
       _("The balance at which services are switched back on (tariff)")),
    _v("total_abonpay", "общая сумма абонентской платы по тарифным и нетарифным услугам",
       _("Total monthly charge for tariff and other services")),
    _v("tarif_abonpay", "сумма абонентской платы по тарифным услугам", _("Monthly charge for tariff services")),
    _v("nontarif_abonpay", "сумма абонентской платы по нетарифным услугам (общая минус тарифная)",
       _("Monthly charge for other services (total minus tariff)")),
    _v("gen_pwd", "пароль, созданный через админ. панель (всегда от первой учётной записи)",
       _("Password set in the admin panel (always the first account's)"), sometimes=True),
    _v("login", "логин абонента", _("The subscriber's login")),
    _v("tarif_name", "тариф абонента", _("The subscriber's tariff")),
    _v("plan_comment", "описание тарифа (например скорость)", _("Tariff description, e.g. the speed")),
    _v("recomend_pay_sum", "рекомендуемый платёж", _("Recommended payment"), "", "%(recomend_pay_sum)5.2f"),
    _v("recomend_pay_sum_post", "рекомендуемый платёж, постоплата", _("Recommended payment, postpaid"), "",
       "%(recomend_pay_sum_post)5.2f", sometimes=True),
    _v("minimal_pay_sum", "минимальный платёж для разблокировки", _("Least payment that lifts the block"), "",
       "%(minimal_pay_sum)5.2f"),
    _v("abonent_id", "ID абонента", _("Subscriber id")),
    _v("subscriber_comment", "стандартный реквизит «Комментарий»", _("The subscriber's standard field Comment"),
       sometimes=True),
    _v("enough_to_date", "дата «хватит денег до»", _("Date the money lasts until"),
       '{{ enough_to_date|slice:":-9" }}'),
)
TEXT = _v("text", "передаваемый текст (сообщение непосредственно конкретному абоненту)",
          _("The text sent with the event (a message to this subscriber)"))
PER_TYPE: dict[str, tuple[Variable, ...]] = {
    "days_before_block": (
        _v("days_left", "дней до блокировки", _("Days left until the block")),
        _v("block_date", "дата блокировки", _("Date of the block")),
    ),
    "password_reset": (_v("psw_token", "проверочный код для сброса пароля личного кабинета",
                          _("Verification code for resetting the personal cabinet's password")),),
    "helpdesk_ticket": (
        TEXT,
        _v("ticket_id", "номер заявки", _("Ticket number")),
        _v("subscriber_name", "имя абонента, который создал заявку в helpdesk", _("Name of the ticket's creator")),
        _v("subscriber_sms", "номер телефона абонента, который создал заявку в helpdesk",
           _("Phone number of the ticket's creator")),
        _v("subscriber_email", "email абонента, который создал заявку в helpdesk", _("E-mail of the ticket's creator")),
        _v("subscriber_home", "адрес абонента, который создал заявку в helpdesk", _("Address of the ticket's creator")),
    ),
    "manual": (TEXT,),
    "test_message": (TEXT,),
    "payment_received": (_v("amount", "сумма платежа", _("Amount paid")),),
}
# Django templates only: loops and records (the manual's "Использование переменных Django").
DJANGO_ONLY = (
    _v("abonent", "любое поле абонента: {{ abonent.contract_number }}", _("Any subscriber field"),
       "{{ abonent.contract_number }}"),
    _v("operator", "поля оператора связи: {{ operator.name }}", _("The operator's fields"), "{{ operator.name }}"),
    _v("abonent_id_users", "учётные записи абонента (цикл)", _("The subscriber's accounts (a loop)"),
       "{% for user in abonent.abonent_id_users.all %}{{ user.login }} {{ user.gen_pwd }}{% endfor %}"),
)


def known_event_types() -> list[str]:
    return [t for t, _ru, _en in EVENT_TYPES]


def variables_for(event_type: str) -> list[Variable]:
    """The variables an event of this type carries (any type: the subscriber's fields)."""
    return [*SUBSCRIBER, *PER_TYPE.get(event_type, ())]


def label(choices: tuple[tuple[str, str, str], ...], value: str) -> str:
    """The name of a choice in the reader's language ("" for an unknown value)."""
    ru = (get_language() or "").startswith("ru")
    return next((r if ru else str(e) for v, r, e in choices if v == value), "")


def markdown() -> str:
    """docs/template-variables.md: every event type with its variables (Russian and English)."""
    head = ["| standard | Django | описание | description |", "|---|---|---|---|"]
    lines = ["# Template variables", "",
             "Generated from `msgd/vocabulary.py` (`python -m msgd.vocabulary`); the admin's template",
             "form shows the same list beside the body, each variable insertable with a click.", "",
             "Every event about a subscriber carries these, plus any field billing sends in `abonent`",
             "and `data` (* only when the subscriber has it: billing leaves it out otherwise):", "",
             *head, *(_row(v) for v in SUBSCRIBER)]
    for event_type, ru, en in EVENT_TYPES:
        extra = PER_TYPE.get(event_type, ())
        if extra:
            lines += ["", f"## `{event_type}` — {ru} ({en})", "", *head, *(_row(v) for v in extra)]
    lines += ["", "## Django templates only", "", "| Django | описание | description |", "|---|---|---|",
              *(f"| {_code(v.django_form)} | {_cell(v.ru)} | {v.en} |" for v in DJANGO_ONLY),
              "", "## Subscriber statuses (status filter)", "", "| status | статус | |", "|---|---|---|",
              *(f"| `{v}` | {ru} | {en} |" for v, ru, en in STATUSES), ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{_cell(text)}`"


def _row(v: Variable) -> str:
    mark = " *" if v.sometimes else ""
    return f"| {_code(v.standard_form)}{mark} | {_code(v.django_form)} | {_cell(v.ru)} | {v.en} |"


DOC = Path(__file__).resolve().parent.parent / "docs" / "template-variables.md"

if __name__ == "__main__":  # pragma: no cover - `python -m msgd.vocabulary` rewrites the document
    from msgd import store

    store.setup()
    DOC.write_text(markdown(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC}\n")
