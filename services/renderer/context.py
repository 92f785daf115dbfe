"""The "standard" variables a template sees, built from one event (pure, no Django).

``build_context(event, operator)`` returns the flat dict that standard
(%-style) templates format and that Django templates see at top level.
Precedence, lowest first:

1. every ``abonent`` field, except ``contacts`` and related-record lists
   (a list whose items are all mappings, e.g. ``abonent_id_users``; an empty
   list counts as one) -- those are reached through ``abonent`` in Django;
2. every ``data`` field (event-specific values win over subscriber fields:
   a helpdesk ticket's ``abonent_id`` is the ticket creator's);
3. derived variables, filled only when 1-2 did not give them:

   - ``operator_name``: the stored operator's name, else the event's, else
     "Лучший провайдер" (the manual's default);
   - ``currecy`` and ``currency``: the original's misspelling keeps working;
     whichever is given fills the other (else the stored operator's
     ``currency``; there is no invented default: a template that needs it
     fails with a clear "not in the event" error);
   - ``nontarif_abonpay`` = ``total_abonpay`` - ``tarif_abonpay`` (exact
     decimal arithmetic) when both are numbers;
   - ``minimal_pay_sum`` (the least payment that switches the services back
     on) = ``allow_limit`` - ``balance``, at least 0 (no ``allow_limit``: 0 -
     ``balance``), when billing sends a ``balance`` but no ``minimal_pay_sum``;
   - ``recomend_pay_sum`` = ``total_abonpay`` - ``balance``, at least 0 -- the
     sum the manual's own Django example computes ("внесите не менее
     total_abonpay|sub:BALANCE, или 0") -- else ``minimal_pay_sum``, when
     billing sends a ``balance`` but no ``recomend_pay_sum``;
   - ``abonent_id`` = ``abonent.id``;
   - ``gen_pwd`` / ``login`` from the *first* user account in the order the
     event lists them (manual: "%(gen_pwd)s is always the password of the
     first account").  No password on the first account -> no ``gen_pwd``
     (manual: "does not exist if changed in the cabinet"); we never fall
     through to the second account;
   - ``BALANCE`` = ``balance``: the manual's Django example
     ``{% if total_abonpay <= BALANCE %}`` mixes cases, so the original
     injected exactly this one upper-case alias; we add no others;
   - scalar ``contacts`` entries (``sms``, ``email``, ...) when no field of
     that name exists (the original's subscriber had ``sms``/``email`` fields).

Money: money fields (``MONEY_FIELDS``) given as numbers *or numeric strings*,
and every float/Decimal anywhere, become :class:`Money` -- an exact
``decimal.Decimal`` that prints like the number billing sent and rounds
half away from zero (ROUND_HALF_UP) when formatted with a precision:

    ``%(balance).2f``  0.005 -> "0.01", 2.675 -> "2.68", -0.004 -> "0.00"
    ``%(balance).f``   -0.5 -> "-1", 0.5 -> "1", 2.5 -> "3", -0.4 -> "0"

A rounded zero is never shown as "-0".  (Python's ``'%.f' % -0.5`` is "-0"
and ``'%.2f' % 2.675`` is "2.67" -- binary-float artefacts a subscriber
reading a bill would call wrong.)  ``%d`` keeps Python's truncation
(-12.5 -> "-12"), as the original did.  Non-money numeric strings
(``contract_number`` "00123", ``psw_token``) stay text.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from msgd.redact import is_secret_key
from services.renderer.dates import date_like

DEFAULT_OPERATOR_NAME = "Лучший провайдер"

#: Fields whose numeric strings are turned into numbers (floats always are).
MONEY_FIELDS = frozenset({
    "balance", "allow_limit", "total_abonpay", "tarif_abonpay", "nontarif_abonpay",
    "recomend_pay_sum", "recomend_pay_sum_post", "minimal_pay_sum", "credit",
    "amount", "sum", "payment_sum", "pay_sum", "BALANCE",
})

_OPERATOR_ATTRS = ("id", "code", "name", "email", "timezone", "default_subject", "warn_days", "currency")


class RenderError(Exception):
    """A template cannot be rendered for this event; the message says why, in plain words.

    Defined here (the package's base module) so every renderer module can raise
    it; ``services.renderer.render.RenderError`` is the same class.  Rendering
    errors are permanent: retrying the same event cannot help.
    """

    def __init__(self, message: str, *, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


def round_half_up(value: Decimal, places: int) -> Decimal:
    """``value`` rounded to ``places`` decimals, half away from zero, never negative zero."""
    exp = Decimal(1).scaleb(-places)
    ctx = decimal.Context(prec=max(28, value.adjusted() + places + 3), rounding=ROUND_HALF_UP)
    rounded = value.quantize(exp, context=ctx)
    return rounded.copy_abs() if rounded.is_zero() else rounded


class Money(Decimal):
    """An exact amount: prints as billing sent it, rounds ROUND_HALF_UP when given a precision.

    ``str(Money(-12.5)) == "-12.5"``, ``str(Money("12.50")) == "12.50"``,
    ``f"{Money(2.675):.2f}" == "2.68"``.  Arithmetic returns plain ``Decimal``
    (exact: 500.1 - 450.05 is 50.05, not 50.050000000000004), which Django and
    django-mathfilters handle natively.
    """

    __slots__ = ()

    def __new__(cls, value: object) -> Money:
        kind = type(value)
        if kind is int:  # exact and finite; Decimal(0) is no "-0"
            return Decimal.__new__(cls, value)  # type: ignore[arg-type]
        if kind is float:
            if not math.isfinite(value):  # type: ignore[arg-type]
                raise ValueError("not a finite number")
            number = Decimal.__new__(cls, repr(value))  # the shortest text that reads back as it
            return number if number else Decimal.__new__(cls, number.copy_abs())  # -0.0 -> 0.0
        if kind is Decimal or kind is Money:
            pass
        elif isinstance(value, str):
            value = value.strip()
        elif isinstance(value, bool):
            raise TypeError("a truth value is not an amount")
        elif isinstance(value, float):
            value = repr(value)
        elif not isinstance(value, int | Decimal):
            raise TypeError(f"not a number: {type(value).__name__}")
        number = Decimal.__new__(cls, value)  # type: ignore[arg-type]
        if not number.is_finite():
            raise ValueError("not a finite number")
        return number if number else Decimal.__new__(cls, number.copy_abs())  # never "-0"

    def __str__(self) -> str:
        return Decimal.__format__(self, "f")

    def __repr__(self) -> str:
        return f"Money('{self}')"

    def __format__(self, spec: str, context: decimal.Context | None = None, /) -> str:
        with decimal.localcontext() as ctx:
            ctx.rounding = ROUND_HALF_UP
            ctx.prec = max(28, self.adjusted() + 30)
            text = Decimal.__format__(self, spec)
            mantissa = text.lower().split("e")[0]
            if self < 0 and not any(c in "123456789" for c in mantissa):
                text = Decimal.__format__(self.copy_abs(), spec)  # rounded to zero: no "-0"
        return text


def to_money(value: Any) -> Money | None:
    """``value`` as :class:`Money`, or None when it is not a finite number."""
    if isinstance(value, Money):
        return value
    try:
        return Money(value)
    except (TypeError, ValueError, ArithmeticError):
        return None


def _money_or(value: Any) -> Any:
    """``to_money(value)``, or ``value`` itself when it is no finite number."""
    try:
        return Money(value)
    except (TypeError, ValueError, ArithmeticError):
        return value


def normalize(key: str | None, value: Any) -> Any:
    """Money for floats, Decimals and money fields' numbers; :class:`DateText` for
    date-like text (``services.renderer.dates``); anything else unchanged."""
    kind = type(value)  # the common exact types first: the same answers, fewer checks
    if kind is str:
        return _money_or(value) if key in MONEY_FIELDS else date_like(key, value)
    if kind is int:
        return _money_or(value) if key in MONEY_FIELDS else value
    if kind is float:
        return _money_or(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float | Decimal) or (
        key in MONEY_FIELDS and isinstance(value, int | str)
    ):
        money = to_money(value)
        return value if money is None else money
    if isinstance(value, str):
        return date_like(key, value)
    return value


def is_related_list(value: Any) -> bool:
    """A list of related records (every item a mapping; an empty list counts)."""
    return isinstance(value, list | tuple) and all(isinstance(item, Mapping) for item in value)


def _fields(obj: Any) -> Mapping[str, Any]:
    """``obj``'s fields to read (a dict is used as it is: nothing here changes it)."""
    return obj if type(obj) is dict else _as_mapping(obj)


def _as_mapping(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    return {name: getattr(obj, name) for name in _OPERATOR_ATTRS if hasattr(obj, name)}


_OPERATORS: dict[str, dict[str, Any]] = {}
_OPERATORS_KEPT = 256


def operator_fields(event: Mapping[str, Any], operator: Any = None) -> dict[str, Any]:
    """The operator as templates see it: the event's fields overlaid by the stored
    operator's non-empty ones; secret-looking keys dropped; ``name`` never empty.

    The same operator comes with every message, so the result is kept by what it is made of
    (the last ``_OPERATORS_KEPT`` kinds); each call gets its own copy."""
    return dict(operator_fields_shared(event, operator))


def operator_fields_shared(event: Mapping[str, Any], operator: Any) -> Mapping[str, Any]:
    """``operator_fields`` shared: the kept dict itself, which callers only read.

    Kept by the text of what it is made of (``repr`` tells 1 from 1.0 and True, "1.0"
    from "1"), so a changed operator -- a configuration refresh -- is worked out anew."""
    given, stored = _fields(event.get("operator")), _fields(operator)
    key = repr((given, stored))
    found = _OPERATORS.get(key)
    if found is None:
        if len(_OPERATORS) >= _OPERATORS_KEPT:
            _OPERATORS.clear()
        found = _OPERATORS[key] = _operator_fields(dict(given), dict(stored))
    return found


def _operator_fields(fields: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    fields = dict(fields)
    for key, value in stored.items():
        if value not in (None, "") or key not in fields:
            fields[key] = value
    clean = {k: normalize(k, v) for k, v in fields.items() if not is_secret_key(str(k))}
    clean["name"] = clean.get("name") or DEFAULT_OPERATOR_NAME
    return clean


def first_account(abonent: Mapping[str, Any]) -> Mapping[str, Any] | None:
    users = abonent.get("abonent_id_users")
    if is_related_list(users) and users:
        first: Mapping[str, Any] = users[0]
        return first
    return None


def _payment_defaults(ctx: dict[str, Any]) -> None:
    """``minimal_pay_sum`` and ``recomend_pay_sum`` when billing did not send them."""
    balance = ctx.get("balance")
    if not isinstance(balance, Money):
        return
    if "minimal_pay_sum" not in ctx:
        limit = ctx.get("allow_limit")
        threshold = limit if isinstance(limit, Money) else _ZERO
        ctx["minimal_pay_sum"] = Money(max(_ZERO, threshold - balance))
    if "recomend_pay_sum" not in ctx:
        total = ctx.get("total_abonpay")
        ctx["recomend_pay_sum"] = (Money(max(_ZERO, total - balance)) if isinstance(total, Money)
                                   else ctx.get("minimal_pay_sum"))


_ZERO = Decimal(0)


class Flat(dict[str, Any]):
    """``build_context``'s result: a dict, plus what a Django context reuses.

    ``normalized``: how many of its first keys (in order) hold ``normalize``'s output
    (normalizing them again gives the same, so a Django context skips it); ``operator``:
    ``operator_fields_shared`` of the event (read only), or None."""

    normalized: int = 0
    operator: Mapping[str, Any] | None = None


def build_context(event: Mapping[str, Any], operator: Any = None) -> Flat:
    """The flat standard context for ``event`` (see the module docstring for every rule)."""
    abonent = _fields(event.get("abonent"))
    data = _fields(event.get("data"))
    ctx = Flat()
    for source in (abonent, data):
        for key, value in source.items():
            if source is abonent and key == "contacts":
                continue
            kind = type(value)
            if kind is str:  # the common cases inline: what normalize() gives, without the call
                ctx[key] = _money_or(value) if key in MONEY_FIELDS else date_like(key, value)
            elif kind is int:
                ctx[key] = _money_or(value) if key in MONEY_FIELDS else value
            elif not is_related_list(value):
                ctx[key] = normalize(key, value)
    ctx.normalized = len(ctx)  # every key so far; below, keys are only added, never replaced

    op = ctx.operator = operator_fields_shared(event, operator)
    ctx.setdefault("operator_name", op["name"])

    if "currecy" not in ctx and "currency" in ctx:
        ctx["currecy"] = ctx["currency"]
    elif "currency" not in ctx and "currecy" in ctx:
        ctx["currency"] = ctx["currecy"]
    elif "currency" not in ctx and op.get("currency"):
        ctx["currency"] = ctx["currecy"] = op["currency"]

    if "nontarif_abonpay" not in ctx:
        total, tarif = ctx.get("total_abonpay"), ctx.get("tarif_abonpay")
        if isinstance(total, Money) and isinstance(tarif, Money):
            ctx["nontarif_abonpay"] = Money(total - tarif)

    _payment_defaults(ctx)

    if "abonent_id" not in ctx and "id" in abonent:
        ctx["abonent_id"] = abonent["id"]

    account = first_account(abonent)
    if account is not None:
        if "gen_pwd" not in ctx and account.get("gen_pwd") not in (None, ""):
            ctx["gen_pwd"] = account["gen_pwd"]
        if "login" not in ctx and account.get("login") not in (None, ""):
            ctx["login"] = account["login"]

    if "balance" in ctx:
        ctx.setdefault("BALANCE", ctx["balance"])

    contacts = abonent.get("contacts")
    if isinstance(contacts, Mapping):
        for key, value in contacts.items():
            if isinstance(value, str | int) and not isinstance(value, bool):
                ctx.setdefault(str(key), value)
    return ctx
