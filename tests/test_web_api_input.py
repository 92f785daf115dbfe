"""Bad input at the HTTP API gets a JSON 4xx, never a 5xx or an HTML page (Django's test client;
the store under test; events would go to an embedded broker, and none may arrive there).

The issue's cases are one example each of a kind: bodies the JSON decoder must refuse, a body
over the size limit, events msgd cannot deliver (unknown operator, text the log cannot
store), query parameters, methods, and errors outside the views.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from msgd.safejson import DEFAULT_MAX_BYTES
from msgd.settings import Settings
from tests import seed
from tests.support import ROOT
from tests.test_web_admin import staff
from tests.test_web_api import ABONENT, best, client, embedded, example, make_message, post, queued

__all__ = ["best", "client", "embedded", "staff"]  # fixtures shared with test_web_api(_admin)

EVENT_JSON = json.dumps(example("low_balance"), ensure_ascii=False)
# Each the input or a sibling: what json.loads lets through or dies on.
UNDECODABLE = {
    "lone surrogate in event_id": EVENT_JSON.replace('"event_id": "', '"event_id": "\\ud800', 1),
    "lone surrogate in a field name": EVENT_JSON.replace('"data": {}', '"data": {"\\udc00": 1}'),
    "5000 nested objects": '{"a":' * 5000 + "1" + "}" * 5000,
    "5000 nested lists in data": EVENT_JSON.replace('"data": {}', '"data": {"x": ' + "[" * 5000 + "]" * 5000 + "}"),
    "integer of 5001 digits": EVENT_JSON[:-1] + ', "n": ' + "7" * 5001 + "}",
    "not UTF-8": EVENT_JSON.replace("Новый", "\udcff", 1),  # sent as the byte 0xFF (surrogateescape)
    "empty": "",
    "not JSON": "{'event_id': 1}",
}


def raw_post(client: Any, path: str, text: str) -> Any:
    body = text.encode("utf-8", "surrogateescape")
    return client.post(path, data=body, content_type="application/json")


def is_json_error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.content[:300]
    assert resp["Content-Type"] == "application/json", resp["Content-Type"]
    body: dict[str, Any] = json.loads(resp.content)
    assert body["error"]
    return body


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/messages"])
@pytest.mark.parametrize("name", list(UNDECODABLE))
def test_undecodable_bodies_get_400_json(client: Any, best: Any, embedded: Settings, path: str, name: str) -> None:
    body = is_json_error(raw_post(client, path, UNDECODABLE[name]), 400)
    assert body["errors"] and body["errors"][0]["field"] == "(body)", body
    assert queued(embedded) == []


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/messages"])
def test_a_body_over_the_limit_gets_413_naming_it(client: Any, best: Any, embedded: Settings, path: str) -> None:
    event = example("low_balance")
    event["data"] = {"text": "x" * (3 * 1024 * 1024)}  # the 3 MB
    body = is_json_error(post(client, path, event), 413)
    assert body["max_bytes"] == DEFAULT_MAX_BYTES
    assert f"limit of {DEFAULT_MAX_BYTES} bytes" in body["errors"][0]["message"]
    just_under = example("low_balance")
    just_under["data"] = {"text": ""}
    just_under["data"]["text"] = "x" * (DEFAULT_MAX_BYTES - len(json.dumps(just_under)))
    assert len(json.dumps(just_under)) == DEFAULT_MAX_BYTES
    if path == "/api/v1/events":
        assert post(client, path, just_under).status_code == 202
        assert len(queued(embedded)) == 1
    else:
        assert queued(embedded) == []


def test_the_limit_is_documented_where_it_is_set() -> None:
    from msgd.store.django_settings import max_body_bytes

    assert max_body_bytes({}) == DEFAULT_MAX_BYTES == 1048576
    assert max_body_bytes({"MSGD_MAX_BODY_BYTES": "2048"}) == 2048
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| `MSGD_MAX_BODY_BYTES` | `{DEFAULT_MAX_BYTES}`" in readme
    openapi = (ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8")
    assert f"MSGD_MAX_BODY_BYTES, default {DEFAULT_MAX_BYTES} bytes" in openapi


def test_an_event_for_an_unconfigured_operator_is_400_naming_it(client: Any, best: Any,
                                                               embedded: Settings) -> None:
    nobody = example("low_balance")
    nobody["operator"] = {"code": "nobody"}
    body = is_json_error(post(client, "/api/v1/events", nobody), 400)
    assert body["errors"] == [{"field": "operator.code", "message": "operator 'nobody' is not configured"
                               " in msgd (add it: msgd config load, or the admin)"}]
    listed = is_json_error(post(client, "/api/v1/events", [example("low_balance"), nobody]), 400)
    assert [e["field"] for e in listed["errors"]] == ["[1].operator.code"]
    assert queued(embedded) == []


@pytest.mark.parametrize("place", ["data.text", "event_id", "abonent.name", "operator.code"])
def test_event_text_the_log_cannot_store_is_400(client: Any, best: Any, embedded: Settings, place: str) -> None:
    event = example("low_balance")
    node = event
    *parents, last = place.split(".")
    for step in parents:
        node = node.setdefault(step, {})
    node[last] = f"{node.get(last, 'x')}\x00"
    body = is_json_error(post(client, "/api/v1/events", event), 400)
    assert any(e["field"] == place and "NUL" in e["message"] for e in body["errors"]), body
    assert queued(embedded) == []


@pytest.mark.parametrize(("change", "field"), [
    ({"operator": "be\x00st"}, "operator"),  # PostgreSQL refuses NUL even in a lookup
    ({"text": "a\x00b"}, "text"),
    ({"abonent": {**ABONENT, "name": "\x00"}}, "abonent.name"),
    ({"template_id": 10**30}, "template_id"),  # beyond a 64-bit id
    ({"template_id": -1}, "template_id"),
])
def test_manual_send_input_the_store_cannot_take_is_400(client: Any, embedded: Settings,
                                                       change: dict[str, Any], field: str) -> None:
    op = seed.operator()
    tpl = seed.template("manual", "sms", body="%(text)s", owner=op)
    body = {"operator": "best", "abonent": ABONENT, "template_id": tpl.id, "text": "t",
            "admin_email": "admin@best.example", **change}
    answer = is_json_error(post(client, "/api/v1/messages", body), 400)
    assert any(e["field"] == field for e in answer["errors"]), answer
    assert queued(embedded) == []


# -- GET /api/v1/messages: every parameter checked, the empty one too -------------------------
@pytest.mark.parametrize("query", [
    "state=", "subscriber=", "event_id=", "since=", "limit=", "offset=",  # the empty enum, and siblings
    "state=SENT", "limit=%D9%A5", "limit=1.0", "limit=+5", "offset=-1", "offset=1000000001",
    "subscriber=" + "1" * 65, "event_id=" + "e" * 129, "subscriber=1%00", "event_id=a%00b", "since=2024%00",
    "since=2024-02-30", "since=20240501", "since=0001-01-01T00:00:00%2B01:00", "since=9999-12-31T23:59:59-23:59",
    "state=sent&state=failed", "abonent=1",
])
def test_bad_filters_get_400_json(client: Any, query: str) -> None:
    make_message("1", "sent", dt.datetime.now(dt.UTC))
    body = is_json_error(client.get(f"/api/v1/messages?{query}"), 400)
    assert body["errors"][0]["field"] == query.split("=")[0], body


@pytest.mark.parametrize("query", ["since=2024-05-01", "since=2024-05-01T10:00", "since=2024-05-01T10:00:00Z",
                                   "since=2024-05-01T10:00:00.123456%2B03:00", "limit=500", "offset=0",
                                   "state=no-contact", "subscriber=1", "event_id=x"])
def test_good_filters_still_work(client: Any, query: str) -> None:
    resp = client.get(f"/api/v1/messages?{query}")
    assert resp.status_code == 200, resp.content


# -- methods and errors outside the views -----------------------------------------------------
URLS = {"/api/v1/events": "POST", "/api/v1/messages": "GET, POST", "/api/v1/messages/{id}": "GET",
        "/healthz": "GET", "/readyz": "GET"}


@pytest.mark.parametrize("method", ["TRACE", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY"])
@pytest.mark.parametrize("url", list(URLS))
def test_every_url_answers_a_method_it_does_not_take_with_405_json(client: Any, url: str, method: str) -> None:
    from django.test import Client

    path = url.replace("{id}", str(make_message("1", "sent", dt.datetime.now(dt.UTC)).id))
    strict = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=client.defaults["HTTP_AUTHORIZATION"])
    resp = strict.generic(method, path)  # as a real server: CSRF checks on (a 403 page for QUERY)
    body = is_json_error(resp, 405)
    assert resp["Allow"] == URLS[url] and body == {"error": "method not allowed"}


def test_head_is_get_without_a_body(client: Any) -> None:
    assert client.head("/api/v1/messages").status_code == 200
    assert client.head("/healthz").status_code == 200


def test_unknown_urls_and_crashes_under_api_are_json(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.test import Client

    from msgd.web import api_log

    assert is_json_error(client.get("/api/v1/nothing"), 404) == {"error": "not found"}
    assert is_json_error(client.get("/api/v2/events"), 404) == {"error": "not found"}

    def crash(request: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(api_log, "list_messages", crash)
    crashing = Client(raise_request_exception=False, HTTP_AUTHORIZATION=client.defaults["HTTP_AUTHORIZATION"])
    body = is_json_error(crashing.get("/api/v1/messages"), 500)
    assert "a bug" not in json.dumps(body)
    assert crashing.get("/admin/nothing/")["Content-Type"].startswith("text/html")  # the admin keeps its pages


# -- the documents and the other door -----------------------------------------------------------
def test_openapi_states_the_event_schema_the_api_enforces() -> None:
    """docs/openapi.yaml's Event components are schemas/event.v1.json (regenerate with
    `python -m msgd.web.openapi`), and the API's other bounds are stated there."""
    import yaml

    from msgd.web.api_log import MAX_OFFSET, MAX_PAGE, STATES, TEXT_FILTERS
    from msgd.web.openapi import MARKER, OPENAPI, event_components, generated_text

    text = OPENAPI.read_text(encoding="utf-8")
    assert text.partition(MARKER)[2] == generated_text(), "run: python -m msgd.web.openapi"
    spec = yaml.safe_load(text)
    schemas = spec["components"]["schemas"]
    assert {k: schemas[k] for k in event_components()} == event_components()
    assert schemas["Event"]["properties"]["event_id"] == {**schemas["Event"]["properties"]["event_id"],
                                                          "minLength": 1, "maxLength": 128}
    params = {p["name"]: p["schema"] for p in spec["paths"]["/api/v1/messages"]["get"]["parameters"]}
    assert schemas["State"]["enum"] == list(STATES)
    assert (params["limit"]["maximum"], params["offset"]["maximum"]) == (MAX_PAGE, MAX_OFFSET)
    assert {k: params[k]["maxLength"] for k in TEXT_FILTERS} == TEXT_FILTERS
    for path in ("/api/v1/events", "/api/v1/messages"):
        assert {"400", "401", "413"} <= set(spec["paths"][path]["post"]["responses"])


@pytest.mark.parametrize(("name", "reason"), [
    ("lone surrogate in event_id", "lone surrogate"),
    ("5000 nested objects", "deeper than 32 levels"),
    ("integer of 5001 digits", "more than 4300 digits"),
    ("not UTF-8", "not UTF-8"),
])
def test_msgd_publish_decodes_files_as_the_api_does(db: str, embedded: Settings, tmp_path: Any,
                                                    name: str, reason: str) -> None:
    from msgd.cli import main

    path = tmp_path / "event.json"
    path.write_bytes(UNDECODABLE[name].encode("utf-8", "surrogateescape"))
    with pytest.raises(SystemExit) as refused:
        main(["publish", str(path)])
    assert reason in str(refused.value)
    lines = tmp_path / "events.jsonl"  # JSON lines: the bad line is named
    lines.write_bytes(b"{}\n" + UNDECODABLE[name].encode("utf-8", "surrogateescape") + b"\n")
    with pytest.raises(SystemExit) as refused:
        main(["publish", str(lines)])
    assert "line 2" in str(refused.value) and reason in str(refused.value)
    assert queued(embedded) == []


@pytest.mark.parametrize("url", ["/admin/msgd/message/?state=%00", "/admin/msgd/message/?channel__exact=a%00",
                                 "/admin/msgd/message/?q=%00", "/admin/tools/events/a%00b/",
                                 "/admin/msgd/template/?event_type=%00"])
def test_nul_in_an_admin_url_is_a_400_page_not_a_500(staff: Any, url: str) -> None:
    """The same kind outside the API: PostgreSQL refuses NUL even in a lookup."""
    resp = staff.get(url)
    assert resp.status_code == 400, resp.status_code


def oversized_event() -> dict[str, Any]:
    """An event the router parks before its schema is checked: over 5,000 fields and items."""
    from msgd.schemas import MAX_EVENT_VALUES

    event = example("low_balance")
    event["data"] = {f"k{i}": i for i in range(MAX_EVENT_VALUES + 1)}
    return event


def test_an_event_the_router_would_park_for_its_size_is_400_not_202(client: Any, best: Any,
                                                                    embedded: Settings) -> None:
    """The API accepted it (202) and the router parked it: billing was told it was taken."""
    body = is_json_error(post(client, "/api/v1/events", oversized_event()), 400)
    assert body["errors"][0]["field"] == "(body)"
    assert "more than 5000 values" in body["errors"][0]["message"]
    listed = is_json_error(post(client, "/api/v1/events", [example("low_balance"), oversized_event()]), 400)
    assert [e["field"] for e in listed["errors"]] == ["[1]"]
    items = {f"k{i}": [0] * 2000 for i in range(3)}  # list items count too, however deep
    deep = example("low_balance")
    deep["data"] = {"rows": items}
    assert is_json_error(post(client, "/api/v1/events", deep), 400)["errors"][0]["field"] == "(body)"
    assert queued(embedded) == []


def test_msgd_publish_refuses_what_the_router_would_park_for_its_size(db: str, embedded: Settings,
                                                                    tmp_path: Any,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from msgd.cli import main

    path = tmp_path / "big.json"
    path.write_text(json.dumps(oversized_event()), encoding="utf-8")
    assert main(["publish", str(path)]) == 2
    assert "more than 5000 values" in capsys.readouterr().err
    assert queued(embedded) == []


@pytest.mark.parametrize("command", [["publish"], ["template", "render", "Низкий баланс (SMS)", "--event"]])
def test_an_event_file_that_cannot_be_read_is_named_not_a_traceback(db: str, embedded: Settings, tmp_path: Any,
                                                                    command: list[str]) -> None:
    from msgd.cli import main

    for path, words in [(tmp_path / "missing.json", "no such file"), (tmp_path, "cannot read")]:
        with pytest.raises(SystemExit) as refused:
            main([*command, str(path)])
        assert str(refused.value) == f"{path}: " + (words if words == "no such file" else
                                                   "cannot read (Is a directory)")
    assert queued(embedded) == []


def test_an_offset_whose_plus_the_url_turned_into_a_space_is_explained(client: Any) -> None:
    """`?since=2026-11-30T10:00:00+03:00` unencoded reads as "...T10:00:00 03:00"."""
    answer = is_json_error(client.get("/api/v1/messages?since=2026-11-30T10:00:00+03:00"), 400)
    assert answer["errors"] == [{"field": "since", "message": "an ISO 8601 date or date-time, e.g. 2024-05-01 or"
                                 " 2024-05-01T00:00:00+03:00 (a '+' in a URL's query reads as a space: write"
                                 " its offset as %2B03:00)"}]
    plain = is_json_error(client.get("/api/v1/messages?since=yesterday"), 400)
    assert "%2B" not in plain["errors"][0]["message"]


@pytest.mark.parametrize("operator", [{"code": "best"}, ["best"], 7])
def test_a_manual_send_operator_that_is_not_text_says_so(client: Any, best: Any, embedded: Settings,
                                                        operator: Any) -> None:
    """`"operator": {"code": "best"}` (the event's shape) got "no operator with code {'code': 'best'}"."""
    body = {"operator": operator, "abonent": ABONENT, "template_id": None, "all_templates": True, "text": "x",
            "admin_email": "admin@best.example"}
    answer = is_json_error(post(client, "/api/v1/messages", body), 400)
    assert answer["errors"] == [{"field": "operator", "message": "must be the operator's code as text, e.g. \"best\""}]
    assert queued(embedded) == []


@pytest.mark.parametrize(("place", "value", "message"), [
    ("event_id", "  ", "must hold a character that is not a space (got '  ')"),
    ("event_id", "\t", "must hold a character that is not a space (got '\\t')"),
    ("abonent.id", "", "must be a number, or text with a character that is not a space (got '')"),
    ("abonent.id", " ", "must be a number, or text with a character that is not a space (got ' ')"),
])
def test_a_blank_idempotency_key_or_subscriber_id_is_400(client: Any, best: Any, embedded: Settings,
                                                       place: str, value: str, message: str) -> None:
    """A blank event_id or subscriber id was taken (202): every such event of billing one key."""
    event = example("low_balance")
    node = event
    *parents, last = place.split(".")
    for step in parents:
        node = node[step]
    node[last] = value
    answer = is_json_error(post(client, "/api/v1/events", event), 400)
    assert answer["errors"] == [{"field": place, "message": message}]
    assert queued(embedded) == []


def test_a_body_with_a_byte_order_mark_is_refused_in_plain_words(client: Any, best: Any,
                                                                 embedded: Settings) -> None:
    """The API said "Unexpected UTF-8 BOM (decode using utf-8-sig)": Python's codec, not the client's fix."""
    answer = is_json_error(raw_post(client, "/api/v1/events", "\ufeff" + EVENT_JSON), 400)
    assert answer["errors"] == [{"field": "(body)", "message": "body is not valid JSON: it starts with a byte order"
                                 " mark (BOM, bytes EF BB BF); send UTF-8 without one"}]
    assert queued(embedded) == []


def test_msgd_publish_reads_a_file_saved_with_a_bom(db: str, embedded: Settings, tmp_path: Any) -> None:
    """Windows editors save "UTF-8 with BOM"; msgd config load reads such a file, msgd publish refused it."""
    from msgd.cli import main

    path = tmp_path / "event.json"
    path.write_bytes(b"\xef\xbb\xbf" + EVENT_JSON.encode())
    assert main(["publish", str(path)]) == 0
    assert len(queued(embedded)) == 1
