"""The event contract and the internal wire schemas: examples validate, mistakes read well."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from msgd import schemas
from msgd.schemas import validate, validate_event
from services.senders.base import Outbound

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "examples" / "events"
KNOWN_TYPES = [
    "low_balance",
    "blocked",
    "days_before_block",
    "password_reset",
    "helpdesk_ticket",
    "manual",
    "payment_received",
    "test_message",
]


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def test_there_is_one_example_per_known_type() -> None:
    assert sorted(p.stem for p in EVENTS.glob("*.json")) == sorted(KNOWN_TYPES)


@pytest.mark.parametrize("name", KNOWN_TYPES)
def test_every_example_event_validates(name: str) -> None:
    event = example(name)
    assert event["type"] == name
    assert event["operator"]["code"] == "best"
    assert validate_event(event) == []


def test_schema_files_are_valid_draft_2020_12_with_ids() -> None:
    for kind, file in schemas.SCHEMA_FILES.items():
        schema = schemas.load_schema(kind)
        Draft202012Validator.check_schema(schema)
        assert schema["$id"] == f"https://msgd.example/schemas/{file}"
    documented = schemas.load_schema("event")["properties"]["type"]["examples"]
    assert sorted(documented) == sorted(KNOWN_TYPES)


def test_the_validator_is_compiled_once() -> None:
    assert schemas.validator("event") is schemas.validator("event")


def test_missing_event_id_is_named() -> None:
    event = example("low_balance")
    del event["event_id"]
    assert validate_event(event) == ["event_id: required field is missing"]


def test_empty_and_too_long_event_ids_are_refused() -> None:
    event = example("low_balance")
    event["event_id"] = ""
    assert [e for e in validate_event(event) if e.startswith("event_id:")]
    event["event_id"] = "x" * 129
    assert [e for e in validate_event(event) if e.startswith("event_id:")]


def test_bad_type_explains_the_pattern() -> None:
    event = example("low_balance")
    event["type"] = "Low Balance"
    errors = validate_event(event)
    assert len(errors) == 1
    assert errors[0].startswith("type: must be 1-64 characters")
    assert "'Low Balance'" in errors[0]


def test_the_set_of_types_is_open() -> None:
    event = example("low_balance")
    event["type"] = "tariff.changed-v2"
    assert validate_event(event) == []


def test_password_reset_needs_psw_token() -> None:
    event = example("password_reset")
    del event["data"]["psw_token"]
    assert validate_event(event) == [
        "data.psw_token: required field is missing (for type 'password_reset')"
    ]
    del event["data"]
    assert validate_event(event) == ["data: required field is missing (for type 'password_reset')"]


def test_days_before_block_needs_a_non_negative_days_left() -> None:
    event = example("days_before_block")
    del event["data"]["days_left"]
    assert validate_event(event) == [
        "data.days_left: required field is missing (for type 'days_before_block')"
    ]
    event["data"]["days_left"] = -1
    assert validate_event(event) == ["data.days_left: -1 is less than the minimum of 0"]


def test_manual_without_template_and_without_all_templates_is_refused() -> None:
    event = example("manual")
    event["manual"] = {"template_id": None, "channel": "sms", "admin_email": "admin@best.example"}
    errors = validate_event(event)
    assert len(errors) == 1
    assert errors[0].startswith("manual: must name a template (manual.template_id)")
    assert "all_templates: true" in errors[0]
    assert errors[0].endswith("(for type 'manual')")


@pytest.mark.parametrize(
    "manual",
    [
        {"template_id": 7, "channel": None},
        {"template_id": 7, "channel": "---"},
        {"template_id": None, "all_templates": True},
        {"all_templates": True, "channel": "Email", "admin_email": "admin@best.example"},
    ],
)
def test_manual_with_a_template_or_all_templates_is_accepted(manual: dict[str, Any]) -> None:
    event = example("manual")
    event["manual"] = manual
    assert validate_event(event) == []


def test_manual_type_needs_the_manual_object() -> None:
    event = example("manual")
    del event["manual"]
    assert validate_event(event) == ["manual: required field is missing (for type 'manual')"]


def test_a_misspelt_manual_switch_is_refused_not_ignored() -> None:
    event = example("manual")
    event["manual"] = {"template_id": 3, "all_template": True}
    assert validate_event(event) == ["manual: unknown field(s) 'all_template'"]


def test_wrong_contact_types_name_the_field() -> None:
    event = example("low_balance")
    event["abonent"]["contacts"]["sms"] = 123
    assert validate_event(event) == ["abonent.contacts.sms: 123 is not of type 'string', 'array'"]
    event["abonent"]["contacts"]["sms"] = ["+79121234567", 79121234568]
    assert validate_event(event) == ["abonent.contacts.sms[1]: 79121234568 is not of type 'string'"]


def test_contacts_accept_lists_telegram_ids_and_push_subscriptions() -> None:
    event = example("low_balance")
    event["abonent"]["contacts"] = {
        "sms": ["+79121234567", "+79127654321"],
        "email": ["abonent@example.net", "buh@example.net"],
        "telegram_id": 123456789,
        "push": [
            {
                "endpoint": "https://fcm.googleapis.com/fcm/send/abc",
                "keys": {"p256dh": "BNcRd...", "auth": "tBHI..."},
            }
        ],
    }
    assert validate_event(event) == []
    event["abonent"]["contacts"]["push"] = [{"endpoint": "not a uri", "keys": {}}]
    errors = validate_event(event)
    assert "abonent.contacts.push[0].keys.p256dh: required field is missing" in errors
    assert any(
        e.startswith("abonent.contacts.push[0].endpoint: 'not a uri' is not") for e in errors
    )


def test_balance_may_be_a_numeric_string_but_not_text() -> None:
    event = example("low_balance")
    event["abonent"]["balance"] = "-150.50"
    assert validate_event(event) == []
    event["abonent"]["balance"] = "много"
    assert validate_event(event) == [
        "abonent.balance: must be a number or a numeric string such as \"-150.50\" (got 'много')"
    ]


def test_occurred_at_needs_an_rfc3339_date_time_with_offset() -> None:
    event = example("low_balance")
    for good in (
        "2024-05-01T09:30:00+03:00",
        "2024-05-01T06:30:00Z",
        "2024-05-01T06:30:00.123456789Z",
    ):
        event["occurred_at"] = good
        assert validate_event(event) == [], good
    for bad in ("2024-05-01 09:30:00", "2024-05-01T09:30:00", "2024-02-30T09:30:00Z", "yesterday"):
        event["occurred_at"] = bad
        errors = validate_event(event)
        assert len(errors) == 1 and errors[0].startswith("occurred_at: "), bad
        assert "RFC 3339" in errors[0]


def test_contract_type_and_operator_code() -> None:
    event = example("low_balance")
    event["abonent"]["contract_type"] = "ip"
    del event["operator"]["code"]
    assert validate_event(event) == [
        "abonent.contract_type: 'ip' is not one of ['individual', 'legal']",
        "operator.code: required field is missing",
    ]


def test_errors_never_quote_secret_values() -> None:
    event = example("password_reset")
    event["data"]["psw_token"] = {"code": "482915-SECRET"}
    errors = validate_event(event)
    assert errors and errors[0].startswith("data.psw_token: ***")
    assert not any("482915" in e for e in errors)


def test_not_an_object_at_all() -> None:
    assert validate_event([1, 2]) == ["(root): [1, 2] is not of type 'object'"]


# -- internal wire messages ---------------------------------------------------


def test_render_job_carries_a_valid_event() -> None:
    job: dict[str, Any] = {
        "v": 1,
        "kind": "render",
        "event": example("password_reset"),
        "template_id": 4,
        "channel": "sms",
        "lane": "tx",
        "sender": "noc@best.example",
    }
    assert validate("render", job) == []
    assert validate("render-job", job) == []
    broken = copy.deepcopy(job)
    del broken["event"]["data"]["psw_token"]
    broken["lane"] = "express"
    assert validate("render", broken) == [
        "event.data.psw_token: required field is missing (for type 'password_reset')",
        "lane: 'express' is not one of ['tx', 'bulk']",
    ]


def test_outbound_schema_matches_the_dataclass() -> None:
    props = set(schemas.load_schema("outbound")["properties"])
    assert set(Outbound.__dataclass_fields__) | {"v", "kind"} == props
    message = Outbound(
        message_id=str(uuid.uuid4()),
        event_id="low_balance-10001319-2024-05-01",
        event_type="low_balance",
        operator_code="best",
        channel="sms",
        recipient="+79121234567",
        body="Уважаемый абонент Новый абонент! Ваш баланс 12.50 руб. Пополните счёт.",
        lane="bulk",
        template_id=1,
        created_at="2024-05-01T06:30:00.123456+00:00",
    )
    assert validate("outbound", message.to_wire()) == []
    wire = message.to_wire()
    wire["created_at"] = ""
    assert validate("outbound", wire) == []
    wire.update(message_id="42", attempt=0)
    assert validate("outbound", wire) == [
        "attempt: 0 is less than the minimum of 1",
        "message_id: '42' is not a UUID",
    ]


def test_status_schema() -> None:
    status: dict[str, Any] = {
        "v": 1,
        "kind": "status",
        "message_id": str(uuid.uuid4()),
        "state": "no-contact",
        "reason": "the subscriber has no e-mail address for notifications",
        "attempt": 0,
        "at": "2024-05-01T06:30:00+00:00",
        "gateway_message_id": "",
        "seconds": None,
        "message": {"event_id": "e1", "channel": "email", "template_id": 2, "lane": "bulk"},
    }
    assert validate("status", status) == []
    status["state"] = "lost"
    status["message"]["template_id"] = "two"
    assert validate("status", status) == [
        "message.template_id: 'two' is not of type 'integer', 'null'",
        "state: 'lost' is not one of ['queued', 'delayed', 'retrying', 'sent', 'failed', "
        "'suppressed', 'unsupported', 'no-contact', 'filtered']",
    ]


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown schema kind 'evnet'"):
        validate("evnet", {})
