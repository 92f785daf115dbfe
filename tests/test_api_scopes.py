"""API tokens with scopes (ingest, read, resend) and operators; times with the zone's offset
(issue 13 points 2, 3)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from msgd.settings import Settings
from tests import seed
from tests import test_web_api as api_tests
from tests.test_staff_access import message

embedded = api_tests.embedded
queued = api_tests.queued
example = api_tests.example


def token_client(scopes: tuple[str, ...], operators: tuple[str, ...] = ()) -> Any:
    from django.test import Client

    from msgd.web.models import ApiToken

    name = f"t-{'-'.join(scopes) or 'none'}-{'-'.join(operators) or 'all'}"
    ApiToken.objects.filter(name=name).delete()
    _token, key = ApiToken.create(name, scopes=scopes, operators=operators)
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


def post(c: Any, path: str, body: Any) -> Any:
    return c.post(path, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def two(db: str, embedded: Settings) -> dict[str, Any]:
    seed.operator("best")
    seed.operator("north", name="Северный")
    tpl = seed.template("manual", "sms", body="%(text)s", name="manual")
    return {"best": message("best"), "north": message("north"), "tpl": tpl}


def manual(operator: str, tpl: Any) -> dict[str, Any]:
    return {"operator": operator, "abonent": {"id": 1, "contacts": {"sms": "+79121234567"}}, "template_id": tpl.id,
            "text": "x", "admin_email": "a@best.example"}


def test_an_ingest_token_publishes_and_cannot_read(two: dict[str, Any], embedded: Settings) -> None:
    billing = token_client(("ingest",))
    assert post(billing, "/api/v1/events", example("low_balance")).status_code == 202
    assert post(billing, "/api/v1/messages", manual("best", two["tpl"])).status_code == 202
    for path in ("/api/v1/messages", f"/api/v1/messages/{two['best'].id}"):
        resp = billing.get(path)
        assert resp.status_code == 403 and "'read' scope" in resp.json()["error"], path
    assert post(billing, f"/api/v1/messages/{two['best'].id}/resend", {}).status_code == 403
    assert len(queued(embedded)) == 2


def test_a_read_token_reads_and_cannot_publish(two: dict[str, Any], embedded: Settings) -> None:
    reader = token_client(("read",))
    assert reader.get("/api/v1/messages").json()["count"] == 2
    for path, body in (("/api/v1/events", example("low_balance")), ("/api/v1/messages", manual("best", two["tpl"]))):
        resp = post(reader, path, body)
        assert resp.status_code == 403 and "'ingest' scope" in resp.json()["error"], path
    assert queued(embedded) == []


def test_a_token_limited_to_one_operator(two: dict[str, Any], embedded: Settings) -> None:
    best_only = token_client(("ingest", "read", "resend"), operators=("best",))
    page = best_only.get("/api/v1/messages").json()
    assert [r["operator"] for r in page["results"]] == ["best"]
    assert best_only.get(f"/api/v1/messages/{two['north'].id}").status_code == 404
    assert best_only.get(f"/api/v1/messages/{two['best'].id}").status_code == 200
    north_event = {**example("low_balance"), "operator": {"code": "north"}}
    refused = post(best_only, "/api/v1/events", [example("low_balance"), north_event])
    assert refused.status_code == 403
    assert refused.json()["errors"] == [{"field": "[1].operator.code", "message": "this token may publish only for best"}]
    assert post(best_only, "/api/v1/messages", manual("north", two["tpl"])).status_code == 403
    assert post(best_only, f"/api/v1/messages/{two['north'].id}/resend", {}).status_code == 404
    assert queued(embedded) == []  # all or nothing
    assert post(best_only, "/api/v1/events", example("low_balance")).status_code == 202


def test_api_times_carry_the_configured_zones_offset(two: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from msgd.store.models import Message

    when = dt.datetime(2026, 11, 27, 10, 51, 42, tzinfo=dt.UTC)
    Message.objects.filter(pk=two["best"].pk).update(created_at=when, updated_at=when)
    monkeypatch.setenv("MSGD_TIME_ZONE", "Europe/Moscow")
    row = token_client(("read",)).get(f"/api/v1/messages/{two['best'].id}").json()
    assert row["created_at"] == "2026-11-27T13:51:42+03:00"
    assert dt.datetime.fromisoformat(row["created_at"]) == when


def test_token_cli_takes_scopes_and_operators(two: dict[str, Any], db: str, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from msgd.cli import main
    from msgd.web.models import ApiToken

    monkeypatch.setenv("MSGD_DATABASE_URL", db)
    ApiToken.objects.filter(name__in=["billing", "ops"]).delete()
    assert main(["token", "create", "billing"]) == 0
    assert "scopes: ingest; every operator" in capsys.readouterr().err
    assert main(["token", "create", "ops", "--scope", "read", "--scope", "resend", "--operator", "north"]) == 0
    ops = ApiToken.objects.get(name="ops")
    assert (ops.scopes, ops.operator_codes()) == (["read", "resend"], {"north"})
    assert main(["token", "create", "bad", "--operator", "nowhere"]) == 2
    assert "no operator with code 'nowhere'" in capsys.readouterr().err
    assert main(["token", "list"]) == 0
    listing = capsys.readouterr().out
    assert "read,resend" in listing and "north" in listing
