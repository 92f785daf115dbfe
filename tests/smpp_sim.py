"""A small SMSC for tests: the server side of SMPP 3.4 that a real Jasmin binds to.

It accepts ``bind_transceiver`` (and the transmitter/receiver binds) with one system id and
password, answers ``enquire_link``, records every ``submit_sm`` exactly as it arrived (the
``short_message`` bytes with their user data header, ``data_coding``, ``esm_class``,
``registered_delivery``), answers ``submit_sm_resp`` with a message id of its own and, for a
submit that asks for a receipt (``registered_delivery`` bit 0), sends a ``deliver_sm`` delivery
receipt: ``esm_class`` 0x04, the receipt text of SMPP 3.4 Appendix B (``id:... sub:001 dlvrd:...
submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD err:000 text:``) and the
``receipted_message_id``/``message_state`` TLVs (SMPP 3.4 section 5.3.2.35: 2 DELIVERED,
5 UNDELIVERABLE). Which status a message gets is the test's ``receipt`` rule.

PDUs are encoded and decoded by smpplib (PyPI ``smpplib``, the SMPP library python-smpplib keeps;
https://github.com/python-smpplib/python-smpplib); this module only keeps the session.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ESME_ROK, ESME_RINVBNDSTS, ESME_RBINDFAIL, ESME_RINVCMDID = 0x00, 0x04, 0x0D, 0x03
RECEIPT_REQUESTED = 0x01
UDHI = 0x40
MESSAGE_STATE = {"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6, "UNKNOWN": 7,
                 "REJECTD": 8}
BINDS = ("bind_transceiver", "bind_transmitter", "bind_receiver")


@dataclass(frozen=True)
class Submit:
    """One ``submit_sm`` as the SMSC got it."""

    message_id: str  # what the simulator answered in submit_sm_resp
    source_addr: str
    destination_addr: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes  # as received: the user data header first when esm_class has UDHI

    @property
    def udh(self) -> bytes:
        """The user data header (empty without UDHI): ``05 00 03 ref total seq`` for a part."""
        if not self.esm_class & UDHI or not self.short_message:
            return b""
        return self.short_message[: 1 + self.short_message[0]]

    @property
    def payload(self) -> bytes:
        """The text's bytes without the user data header."""
        return self.short_message[len(self.udh):]

    @property
    def part(self) -> tuple[int, int, int] | None:
        """(reference, total, sequence) of a concatenated message's part (UDH IE 0x00), else None."""
        h = self.udh
        if len(h) >= 6 and h[1] == 0x00 and h[2] == 3:
            return h[3], h[4], h[5]
        return None


Receipt = Callable[[Submit], "str | None"]


def always_delivered(_submit: Submit) -> str | None:
    return "DELIVRD"


class SmppSimulator:
    """The SMSC: ``start()`` listens on 127.0.0.1 (a free port unless given), ``stop()`` closes.

    ``receipt(submit)`` says which receipt status (``DELIVRD``, ``UNDELIV``, ...; a key of
    :data:`MESSAGE_STATE`) a submit that asks for one gets, or None for none; the receipt goes out
    ``receipt_delay`` seconds after the ``submit_sm_resp`` (an SMSC reports when the handset
    answered, never within the submit). Thread-safe: the lists are appended under a lock.
    """

    def __init__(self, system_id: str = "msgdsim", password: str = "simpw",
                 receipt: Receipt = always_delivered, receipt_delay: float = 0.3) -> None:
        self.system_id, self.password = system_id, password
        self.receipt, self.receipt_delay = receipt, receipt_delay
        self.submits: list[Submit] = []
        self.receipts: list[tuple[str, str]] = []  # (message id, status) sent
        self.binds: list[tuple[str, str, bool]] = []  # (command, system id, accepted)
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self._tag = secrets.token_hex(3)
        self._server: socketserver.ThreadingTCPServer | None = None
        self._timers: list[threading.Timer] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self, port: int = 0) -> SmppSimulator:
        sim = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                _Session(sim, self.request).run()

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="smpp-sim", daemon=True).start()
        return self

    def stop(self) -> None:
        with self.lock:
            timers = list(self._timers)
        for t in timers:
            t.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def next_message_id(self) -> str:
        """``sim`` + this simulator's random tag + a counter: unique across test sessions, so a
        key another run left in a shared Redis never names one of this run's messages."""
        return f"sim{self._tag}{next(self._ids):06d}"

    def bound(self) -> bool:
        with self.lock:
            return any(ok for _, _, ok in self.binds)

    def submits_to(self, destination: str) -> list[Submit]:
        """The submits for one number, in arrival order."""
        with self.lock:
            return [s for s in self.submits if s.destination_addr == destination]

    def wait(self, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"SMPP simulator: timed out waiting for {what}")


class _Session:
    """One ESME connection: reads PDUs, answers them; ``sequence`` numbers the PDUs it sends."""

    def __init__(self, sim: SmppSimulator, conn: socket.socket) -> None:
        self.sim, self.conn = sim, conn
        self.sequence = 0
        self.bound = False
        self.write_lock = threading.Lock()
        self.closed = False

    def next_sequence(self) -> int:  # smpplib asks its "client" for sequence numbers
        with self.write_lock:
            self.sequence += 1
            return self.sequence

    def run(self) -> None:
        from smpplib import smpp

        try:
            while True:
                data = self._read_pdu()
                if data is None:
                    return
                pdu = smpp.parse_pdu(data, client=self, allow_unknown_opt_params=True)
                if pdu is None:
                    continue
                if not self._answer(pdu):
                    return
        except OSError:
            return
        finally:
            self.closed = True
            self.conn.close()

    def _read_exact(self, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _read_pdu(self) -> bytes | None:
        head = self._read_exact(4)
        if head is None:
            return None
        (length,) = struct.unpack(">L", head)
        rest = self._read_exact(length - 4)
        return None if rest is None else head + rest

    def _send(self, name: str, sequence: int | None = None, status: int = ESME_ROK, **fields: Any) -> None:
        from smpplib import smpp

        pdu = smpp.make_pdu(name, client=self, **fields)
        if sequence is not None:
            pdu.sequence = sequence
        pdu.status = status
        data = pdu.generate()
        with self.write_lock:
            if not self.closed:
                self.conn.sendall(data)

    def _answer(self, pdu: Any) -> bool:
        """Answer one request; False when the session ends."""
        name, seq = pdu.command, pdu.sequence
        if name in BINDS:
            ok = _text(pdu.system_id) == self.sim.system_id and _text(pdu.password) == self.sim.password
            with self.sim.lock:
                self.sim.binds.append((name, _text(pdu.system_id), ok))
            self.bound = ok
            self._send(f"{name}_resp", seq, ESME_ROK if ok else ESME_RBINDFAIL, system_id=self.sim.system_id)
            return ok
        if name == "enquire_link":
            self._send("enquire_link_resp", seq)
        elif name == "unbind":
            self._send("unbind_resp", seq)
            return False
        elif name == "submit_sm":
            if not self.bound:
                self._send("submit_sm_resp", seq, ESME_RINVBNDSTS, message_id="")
                return True
            self._submit(pdu, seq)
        elif name in ("deliver_sm_resp", "enquire_link_resp", "generic_nack"):
            pass
        elif not name.endswith("_resp"):
            self._send("generic_nack", seq, ESME_RINVCMDID)
        return True

    def _submit(self, pdu: Any, seq: int) -> None:
        sub = Submit(self.sim.next_message_id(), _text(pdu.source_addr), _text(pdu.destination_addr),
                     int(pdu.data_coding or 0), int(pdu.esm_class or 0), int(pdu.registered_delivery or 0),
                     bytes(pdu.short_message or b""))
        with self.sim.lock:
            self.sim.submits.append(sub)
        self._send("submit_sm_resp", seq, message_id=sub.message_id)
        status = self.sim.receipt(sub) if sub.registered_delivery & RECEIPT_REQUESTED else None
        if status is not None:
            timer = threading.Timer(self.sim.receipt_delay, self._receipt, (sub, status, dt.datetime.now(dt.UTC)))
            timer.daemon = True
            with self.sim.lock:
                self.sim._timers.append(timer)
            timer.start()

    def _receipt(self, sub: Submit, status: str, submitted: dt.datetime) -> None:
        done = dt.datetime.now(dt.UTC)
        delivered = status == "DELIVRD"
        err = "000" if delivered else "011"
        text = (f"id:{sub.message_id} sub:001 dlvrd:{'001' if delivered else '000'} "
                f"submit date:{submitted:%y%m%d%H%M} done date:{done:%y%m%d%H%M} stat:{status} err:{err} text:")
        try:
            self._send("deliver_sm", source_addr=sub.destination_addr, destination_addr=sub.source_addr,
                       esm_class=0x04, data_coding=0, short_message=text.encode("ascii"),
                       receipted_message_id=sub.message_id, message_state=MESSAGE_STATE[status])
        except OSError:
            return
        with self.sim.lock:
            self.sim.receipts.append((sub.message_id, status))


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return "" if value is None else str(value)
