"""The counterparts msgd talks to in tests/test_dlr_e2e.py: local SMS gateways that report
deliveries (smsc.ru: send, status query, balance, status-handler callbacks; Digital Direct: send
with a callbackUrl, JSON callbacks), billing's queue on the feedback exchange, and a staff member
signing in to the admin over HTTP.

Each gateway plays one account of its HTTP API as msgd uses it (the formats of
services/senders/sms/dlr.py, dlr_query.py and balance.py) on a real local server
(tests/test_sms_gateways.py's FakeGateway), keeps what it accepted and calls msgd back when the
test says the network has delivered, like the real gateway would.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

from tests.support import pika_params
from tests.test_sms_gateways import Answer, FakeGateway, Hit

NIL_UUID = "00000000-0000-0000-0000-000000000000"


@dataclass
class Accepted:
    """A message the gateway accepted: its id for it and the number."""

    gid: str
    phone: str
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class SmscRu:
    """One smsc.ru account (https://smsc.ru/api/http/): ``/sys/send.php`` with ``fmt=3`` answers
    ``{"id": N, "cnt": 1}``; ``/sys/status.php`` answers a batch from ``statuses`` (phone ->
    (status, err); status 0 "on the way" for the others); ``/sys/balance.php`` the balance.

    ``before_answer(gid, phone)`` runs between accepting a message and answering the send (a
    gateway whose report overtakes its own answer)."""

    login: str
    password: str
    balance: float
    first_id: int
    statuses: dict[str, tuple[int, int]] = field(default_factory=dict)
    before_answer: Callable[[str, str], None] | None = None
    accepted: list[Accepted] = field(default_factory=list)
    status_asked: list[list[str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: FakeGateway | None = None

    def start(self) -> SmscRu:
        self._ids = itertools.count(self.first_id)
        self.server = FakeGateway(self.respond).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def root(self) -> str:
        assert self.server is not None
        return self.server.url.removesuffix("/api/send")

    def respond(self, hit: Hit) -> Answer:
        form = hit.form if hit.method == "POST" else hit.query
        if form.get("fmt") != "3":
            return 400, "this emulator answers fmt=3 only", {}
        if (form.get("login"), form.get("psw")) != (self.login, self.password):
            return 200, {"error": "authorise error", "error_code": 2}, {}
        if hit.path == "/sys/send.php":
            gid, phone = str(next(self._ids)), form.get("phones", "")
            with self.lock:
                self.accepted.append(Accepted(gid, phone, form))
            if self.before_answer is not None:
                self.before_answer(gid, phone)
            return 200, {"id": int(gid), "cnt": 1}, {}
        if hit.path == "/sys/status.php":  # id and phone: comma lists ending in a comma
            ids, phones = (form.get(k, "").rstrip(",").split(",") for k in ("id", "phone"))
            with self.lock:
                self.status_asked.append(ids)
            return 200, [{"id": int(i), "phone": p, "status": self.statuses.get(p, (0, 0))[0],
                          "err": self.statuses.get(p, (0, 0))[1], "last_timestamp": int(time.time())}
                         for i, p in zip(ids, phones, strict=True)], {}
        if hit.path == "/sys/balance.php":
            return 200, {"balance": f"{self.balance:.2f}", "currency": "RUB"}, {}
        return 404, "<html>Not Found</html>", {}

    def sent_to(self, phone: str) -> list[Accepted]:
        with self.lock:
            return [a for a in self.accepted if a.phone == phone]


def smsc_callback(url: str, gid: str, phone: str, status: int, err: int = 0, method: str = "POST") -> str:
    """smsc.ru's status handler ("обработчик статусов", https://smsc.ru/api/http/status_messages/):
    ``id``, ``phone``, ``status``, ``err``, ``time`` (unix seconds) by POST form or GET query; the
    answer body (msgd answers ``OK``)."""
    fields = {"id": gid, "phone": phone, "status": str(status), "err": str(err), "time": str(int(time.time())),
              "cnt": "1", "type": "0"}
    if method == "GET":
        r = requests.get(f"{url}?{urlencode(fields)}", timeout=10)
    else:
        r = requests.post(url, data=fields, timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.text


@dataclass
class DigitalDirect:
    """One Digital Direct account (https://api.docs.direct.i-dgtl.ru/): ``POST /api/v1/message`` of
    a JSON list with one SMS (``Authorization: Basic <key>``) answers ``{"errors": false, "items":
    [{"messageUuid", "code": 201}]}`` and keeps the message's ``callbackUrl``; ``GET
    /api/v1/message/<uuid>`` of an unknown one (msgd's credentials check) is 404."""

    key: str
    sender: str
    accepted: list[Accepted] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: FakeGateway | None = None

    def start(self) -> DigitalDirect:
        self.server = FakeGateway(self.respond).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url.removesuffix("/api/send") + "/api/v1/message"

    def respond(self, hit: Hit) -> Answer:
        if hit.headers.get("Authorization") != f"Basic {self.key}":
            return 401, {"error": {"code": 4012, "msg": "Bad credentials"}}, {}
        if hit.method == "GET" and hit.path.startswith("/api/v1/message/"):
            return 404, {"error": {"code": 4040, "msg": "Message not found"}}, {}
        body = hit.json
        if hit.path != "/api/v1/message" or not isinstance(body, list) or len(body) != 1 \
                or body[0].get("channelType") != "SMS" or body[0].get("senderName") != self.sender:
            return 400, {"error": {"code": 4000, "msg": "Bad request"}}, {}
        gid = str(uuid.uuid4())
        with self.lock:
            self.accepted.append(Accepted(gid, str(body[0].get("destination")), body[0]))
        return 200, {"errors": False, "items": [{"messageUuid": gid, "code": 201}]}, {}

    def sent_to(self, phone: str) -> list[Accepted]:
        with self.lock:
            return [a for a in self.accepted if a.phone == phone]


def digital_direct_callback(message: Accepted, status: str, error_code: int | None = None) -> str:
    """Digital Direct's callback (https://api.docs.direct.i-dgtl.ru/messages/callback): the message
    object, JSON, POSTed to the ``callbackUrl`` the message was sent with; the answer body."""
    item: dict[str, Any] = {"messageUuid": message.gid, "destination": message.phone, "channelType": "SMS",
                            "status": status, "statusTime": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()}
    if error_code is not None:
        item["errorCode"] = error_code
    r = requests.post(str(message.body["callbackUrl"]), json=item, timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.text


@dataclass
class BillingQueue:
    """What billing does with ``msgd.feedback``: its own durable queue, bound to every routing key."""

    url: str
    exchange: str
    name: str

    def _channel(self) -> Any:
        import pika

        return pika.BlockingConnection(pika_params(self.url))

    def declare(self) -> BillingQueue:
        conn = self._channel()
        try:
            ch = conn.channel()
            ch.queue_declare(self.name, durable=True)
            ch.queue_bind(self.name, self.exchange, "#")
        finally:
            conn.close()
        return self

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        """Every event in the queue so far, taken off it: (routing key, JSON body)."""
        conn = self._channel()
        got: list[tuple[str, dict[str, Any]]] = []
        try:
            ch = conn.channel()
            while True:
                method, props, body = ch.basic_get(self.name, auto_ack=True)
                if method is None:
                    return got
                assert props.delivery_mode == 2 and props.content_type == "application/json"
                got.append((method.routing_key, json.loads(body)))
        finally:
            conn.close()

    def delete(self) -> None:
        conn = self._channel()
        try:
            conn.channel().queue_delete(self.name)
        finally:
            conn.close()


def admin_page(base: str, user: str, password: str, path: str) -> str:
    """``path`` of msgd's admin as a staff member sees it after signing in through the login form."""
    with requests.Session() as s:
        login = s.get(f"{base}/admin/login/", timeout=10)
        token = s.cookies["csrftoken"]
        answer = s.post(f"{base}/admin/login/?next={path}", timeout=10, headers={"Referer": login.url},
                        data={"csrfmiddlewaretoken": token, "username": user, "password": password, "next": path})
        assert answer.status_code == 200 and answer.url.endswith(path), answer.url
        return answer.text


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 (a server that is up)."""
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
