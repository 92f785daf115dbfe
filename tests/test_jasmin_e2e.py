"""msgd against a real Jasmin SMS gateway (issue 15, point 3) and the text the SMSC receives.

PyPI ``jasmin`` 0.11.1 runs once per session (tests/jasmin_gateway.py: its own venv, the two
upstream fixes, a private RabbitMQ vhost and Redis database) and binds over SMPP to the small SMSC
of tests/smpp_sim.py, which records every ``submit_sm`` and answers with delivery receipts by the
rule below. msgd's stages run as processes on RabbitMQ and the store under test; Jasmin calls
msgd's web process back at the slot's ``/api/v1/dlr/<slot>/<secret>``.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import urlopen

import pytest

from services.senders.sms.encoding import gsm7_text
from tests import seed
from tests.conftest import TEST_DB, need
from tests.jasmin_gateway import (
    REDIS_HOST,
    REDIS_PORT,
    JasminGateway,
    port_open,
    redis_keys,
    redis_reachable,
    running_jasmin,
)
from tests.smpp_sim import SmppSimulator, Submit
from tests.support import (
    Pipeline,
    StageProcess,
    event,
    free_port,
    msgd,
    publish_with_pika,
    wait_for,
)

pytestmark = pytest.mark.slow

REDIS_DB = int(os.environ.get("MSGD_TEST_JASMIN_REDIS_DB", "13"))
CYRILLIC = "Баланс 12,50 руб. Пополните счёт"
LATIN = "Balance 12.50 RUB. Please top up: pay.example/42"
LONG = ("Уважаемый абонент! Баланс вашего лицевого счёта 12,50 руб. меньше абонентской платы. "
        "Пополните счёт до 01.12, чтобы доступ в интернет не был приостановлен. Спасибо!")
UNDELIVERABLE = {"79160000099"}  # the receipt rule: these numbers get UNDELIV, all others DELIVRD


def receipt(submit: Submit) -> str:
    return "UNDELIV" if submit.destination_addr in UNDELIVERABLE else "DELIVRD"


@pytest.fixture(scope="session")
def smsc() -> Iterator[SmppSimulator]:
    sim = SmppSimulator(receipt=receipt).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def jasmin(rabbit_url: str, smsc: SmppSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JasminGateway]:
    """Jasmin, started once per session and bound to the simulated SMSC."""
    need(redis_reachable(), f"Redis at {REDIS_HOST}:{REDIS_PORT}")
    with contextlib.ExitStack() as stack:
        try:
            gw = stack.enter_context(running_jasmin(tmp_path_factory.mktemp("jasmin"), REDIS_DB, rabbit_url))
        except RuntimeError as exc:
            need(False, f"a private Jasmin ({exc})")
            raise
        gw.configure(smsc.port, smsc.system_id, smsc.password)
        smsc.wait(smsc.bound, 30, "Jasmin's bind_transceiver")
        yield gw


def jasmin_send(gw: JasminGateway, **fields: str) -> str:
    """POST /send as a plain HTTP client would; Jasmin's answer body."""
    body = urlencode({"username": gw.user, "password": gw.password, "from": "Best", **fields}).encode()
    with urlopen(gw.send_url, body, timeout=10) as r:  # noqa: S310 - a local test server
        return str(r.read().decode())


def test_jasmin_passes_hex_content_on_exactly_and_garbles_cyrillic_content(
    jasmin: JasminGateway, smsc: SmppSimulator
) -> None:
    """Why the preset sends hex-content: the three ways a client can hand Jasmin Cyrillic text."""
    as_gsm, as_utf8, as_hex = "79150000001", "79150000002", "79150000003"
    assert jasmin_send(jasmin, to=as_gsm, content=CYRILLIC).startswith("Success")
    assert jasmin_send(jasmin, to=as_utf8, content=CYRILLIC, coding="8").startswith("Success")
    assert jasmin_send(jasmin, to=as_hex, coding="8",
                       **{"hex-content": CYRILLIC.encode("utf-16-be").hex()}).startswith("Success")
    smsc.wait(lambda: all(smsc.submits_to(n) for n in (as_gsm, as_utf8, as_hex)), what="three submits")
    (gsm,), (utf8,), (ucs2,) = (smsc.submits_to(n) for n in (as_gsm, as_utf8, as_hex))
    assert gsm.data_coding == 0 and gsm7_text(gsm.payload) == re.sub("[А-яЁё]", "?", CYRILLIC)
    assert utf8.data_coding == 8 and utf8.payload == CYRILLIC.encode("utf-8")  # read as UCS-2: garbage
    assert utf8.payload.decode("utf-16-be", errors="replace") != CYRILLIC
    assert ucs2.data_coding == 8 and ucs2.payload.decode("utf-16-be") == CYRILLIC


# make test's second pass (SQLite) would start Jasmin again for a path the store does not change;
# the store's part of delivery reports runs on both stores in tests/test_dlr.py.
@pytest.mark.skipif(TEST_DB == "sqlite", reason="the Jasmin round trip runs on PostgreSQL (make test's first pass)")
def test_messages_through_msgd_and_jasmin_arrive_right_and_end_delivered_or_undelivered(
    jasmin: JasminGateway, smsc: SmppSimulator, pipeline: Pipeline, rabbit_url: str, namespace: str,
    tmp_path: Path,
) -> None:
    from msgd.store.models import ChannelSettings, Message

    # What an operator fills in for the preset: Jasmin's address, a Jasmin user, the sender name.
    slot = ChannelSettings.objects.create(
        operator=seed.operator(), channel="sms", outbox=False, secrets={"password": jasmin.password},
        params={"preset": "jasmin", "url": jasmin.send_url, "login": jasmin.user, "sender_name": "Best"})
    seed.template(body="%(text)s")
    web_port = free_port()
    made = msgd("dlr", "url", str(slot.id), "--base", f"http://127.0.0.1:{web_port}", env=pipeline.env)
    assert "kept as the slot's dlr_url" in made.stdout
    web = StageProcess(["web"], {**pipeline.env, "MSGD_WEB_BIND": f"127.0.0.1:{web_port}",
                                 "MSGD_WEB_WORKERS": "1"}, tmp_path / "web.log").start()
    try:
        pipeline.start("router", "renderer", "recorder", "sender:sms")
        wait_for(lambda: port_open(web_port), timeout=60, what="msgd web listening")
        cases = {"79160000001": CYRILLIC, "79160000002": LATIN, "79160000099": CYRILLIC, "79160000003": LONG}
        events = [event(i, sms=f"+{number}", data={"text": text}) for i, (number, text) in enumerate(cases.items())]
        publish_with_pika(rabbit_url, namespace, events)

        def finished() -> list[Any]:
            done = list(Message.objects.filter(state__in=("delivered", "undelivered")))
            return done if len(done) == len(cases) else []

        try:
            wait_for(finished, timeout=60, what="four messages delivered or undelivered through Jasmin's DLRs")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{pipeline.logs_text()[-3000:]}\n{web.log_text()[-2000:]}\n"
                                 f"{jasmin.output()[-6000:]}") from None
    finally:
        web.stop()
    log = {m.recipient.lstrip("+"): m for m in Message.objects.all()}
    assert {n: m.state for n, m in log.items()} == {
        "79160000001": "delivered", "79160000002": "delivered", "79160000099": "undelivered",
        "79160000003": "delivered"}, pipeline.logs_text()[-3000:]

    # The SMSC got each text exactly, in the coding its characters need.
    (cyr,) = smsc.submits_to("79160000001")
    assert (cyr.data_coding, cyr.payload.decode("utf-16-be")) == (8, CYRILLIC)
    (lat,) = smsc.submits_to("79160000002")
    assert (lat.data_coding, gsm7_text(lat.payload)) == (0, LATIN)
    parts = smsc.submits_to("79160000003")
    assert len(parts) == 3 and all(p.data_coding == 8 for p in parts)
    assert [p.part[1:] for p in parts if p.part] == [(3, 1), (3, 2), (3, 3)]
    assert b"".join(p.payload for p in parts).decode("utf-16-be") == LONG
    assert [p.registered_delivery & 1 for p in parts] == [0, 0, 1]  # the receipt is asked for the last part

    # msgd keeps Jasmin's id, Jasmin maps it to the SMSC's, and the DLR matched it.
    for number, m in log.items():
        uuid.UUID(m.gateway_message_id)
        last = smsc.submits_to(number)[-1]
        assert f"[queue-msgid:{m.gateway_message_id}] [smpp-msgid:b'{last.message_id}']" in jasmin.log("messages.log")
        assert m.dlr_at is not None and m.settings_id == slot.id
    assert log["79160000099"].fault == "unknown"
    assert "UNDELIV (err 011)" in log["79160000099"].reason
    assert "DELIVRD" in log["79160000001"].reason
    # Jasmin threw each DLR once and msgd's answer ACK/Jasmin acknowledged it (no retry, no error).
    thrower = jasmin.log("dlr-thrower.log")
    for m in log.values():
        assert thrower.count(f"Throwed DLR [msgid:{m.gateway_message_id}]") == 1, thrower[-2000:]
    assert "MessageAcknowledgementError" not in thrower and "AttributeError" not in jasmin.log("messages.log")
    # Jasmin keeps its SMSC-id mapping in its own Redis database (the dbid fix), not in database 0.
    mapped = {f"queue-msgid:{smsc.submits_to(n)[-1].message_id.upper()}" for n in cases}
    assert mapped <= set(redis_keys(REDIS_DB, "queue-msgid:*"))
    assert not mapped & set(redis_keys(0, "queue-msgid:*"))
