"""Which templates fire for an event, on which channels, and the recorded reason when none do."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from msgd.envelope import FILTERED, NO_CONTACT, UNSUPPORTED
from msgd.store.cache import OperatorView, TemplateView
from services.router.matching import RENDER, decide
from services.senders.registry import sender_classes

OP = OperatorView(id=1, code="best", name="Best", email="noc@best", timezone=ZoneInfo("Europe/Moscow"),
                  quiet_start=None, quiet_end=None, attempts=3, default_subject="", warn_days=3)
SENDERS = sender_classes()


def tpl(tid: int, channel: str | None = "sms", owner: int | None = None, **kw: Any) -> TemplateView:
    fields: dict[str, Any] = {"id": tid, "owner_id": owner, "owner_code": None, "name": f"t{tid}",
                              "event_type": "low_balance", "channel": channel, "subject": "", "body": "x",
                              "enabled": True, "every_day": False, "status_filter": (),
                              "contract_type": None, "use_django": False}
    fields.update(kw)
    return TemplateView(**fields)


def ev(etype: str = "low_balance", contacts: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"event_id": "e1", "type": etype, "operator": {"code": "best"},
                         "abonent": {"id": 1, "status": "active", "contract_type": "individual",
                                     "contacts": {"sms": "+79121234567", "email": "a@b.c"}
                                     if contacts is None else contacts}}
    e.update(kw)
    return e


def outcomes(decisions: list[Any]) -> list[tuple[str, int | None, str | None]]:
    return sorted((d.outcome, d.template.id if d.template else None, d.channel) for d in decisions)


def test_template_without_channel_goes_to_every_channel_with_a_contact() -> None:
    assert outcomes(decide(ev(), OP, [tpl(1, None)], SENDERS)) == [(RENDER, 1, "email"), (RENDER, 1, "sms")]
    only_sms = decide(ev(contacts={"sms": "+79121234567"}), OP, [tpl(1, None)], SENDERS)
    assert outcomes(only_sms) == [(RENDER, 1, "sms")]


def test_no_contact_is_recorded_with_reason() -> None:
    d = decide(ev(contacts={"email": "a@b.c"}), OP, [tpl(1, "sms")], SENDERS)
    assert outcomes(d) == [(NO_CONTACT, 1, "sms")]
    assert "no sms contact" in d[0].reason
    none_at_all = decide(ev(contacts={}), OP, [tpl(1, None)], SENDERS)
    assert outcomes(none_at_all) == [(NO_CONTACT, 1, None)]


def test_operator_own_template_replaces_global_on_the_same_channel() -> None:
    d = decide(ev(), OP, [tpl(1, "sms"), tpl(2, "sms", owner=1), tpl(3, "email")], SENDERS)
    assert outcomes(d) == [(FILTERED, 1, "sms"), (RENDER, 2, "sms"), (RENDER, 3, "email")]
    assert "replaced by operator best's own template" in next(x.reason for x in d if x.outcome == FILTERED)


def test_other_operators_templates_are_invisible() -> None:
    d = decide(ev(), OP, [tpl(1, "sms", owner=2)], SENDERS)
    assert outcomes(d) == [(FILTERED, None, None)]
    assert "no template for event type 'low_balance'" in d[0].reason


def test_filters_say_which_filter() -> None:
    d = decide(ev(), OP, [tpl(1, enabled=False), tpl(2, status_filter=("blocked",)),
                          tpl(3, contract_type="legal")], SENDERS)
    reasons = {x.template.id: x.reason for x in d if x.template}
    assert "disabled" in reasons[1]
    assert "only for subscriber status blocked" in reasons[2]
    assert "only for contract type legal" in reasons[3]


def test_legacy_channel_is_unsupported_not_an_error() -> None:
    d = decide(ev(), OP, [tpl(1, "WhatsApp")], SENDERS)
    assert outcomes(d) == [(UNSUPPORTED, 1, "whatsapp")]


def test_n_day_warning_on_day_n_and_every_day_after() -> None:
    plain, daily = tpl(1, event_type="days_before_block"), tpl(2, event_type="days_before_block", every_day=True)
    for days, fired in [(3, {1, 2}), (2, {2}), (0, {2}), (4, set())]:
        d = decide(ev("days_before_block", data={"days_left": days}), OP, [plain, daily], SENDERS)
        assert {x.template.id for x in d if x.outcome == RENDER and x.template} == fired, days


def test_manual_send_uses_the_chosen_template_and_the_form_channel() -> None:
    t = tpl(7, "sms", event_type="manual", enabled=False)
    other = tpl(8, "sms", event_type="manual")
    form = {"template_id": 7, "channel": "Email", "admin_email": "admin@best"}
    d = decide(ev("manual", manual=form), OP, [t, other], SENDERS)
    assert outcomes(d) == [(RENDER, 7, "email")]
    keep = decide(ev("manual", manual={"template_id": 7, "channel": "---"}), OP, [t, other], SENDERS)
    assert outcomes(keep) == [(RENDER, 7, "sms")]


def test_manual_send_refuses_a_template_of_another_operator() -> None:
    d = decide(ev("manual", manual={"template_id": 9}), OP, [tpl(9, owner=5, event_type="manual")], SENDERS)
    assert d[0].outcome == FILTERED and "belongs to another operator" in d[0].reason


def test_manual_send_naming_a_legacy_method_is_unsupported_not_sent_on_the_templates_channel() -> None:
    """Legacy names are accepted wherever a channel is named, the manual send's form included:
    the form's method still overrides the template's channel, and the message ends unsupported."""
    t = tpl(7, "sms", event_type="manual")
    for method, channel in [("winpop", "winpop"), ("WhatsApp", "whatsapp"), ("Agent", "agent")]:
        d = decide(ev("manual", manual={"template_id": 7, "channel": method}), OP, [t], SENDERS)
        assert outcomes(d) == [(UNSUPPORTED, 7, channel)], method
        assert d[0].reason.startswith(f"unsupported channel {channel!r}: a legacy channel"), d[0].reason
