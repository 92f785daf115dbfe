"""atheris (libFuzzer) harness: what every broker body meets first must neither raise nor hang.

Run by tests/test_linear_time.py, or by hand for longer:
    .venv/bin/python tests/fuzz_bodies.py -max_total_time=600 -timeout=5 [corpus_dir]
An exception or an input slower than ``-timeout`` seconds is a crash; libFuzzer writes it to a
``crash-*`` / ``timeout-*`` file to replay.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import atheris
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports():
    from msgd import parking, safejson
    from msgd.broker.base import Delivery
    from msgd.redact import redact, redact_text
    from msgd.stage import StageBatchHandler


class Accept:
    """A stage that accepts every decoded object (the decode-and-park step is what is fuzzed)."""

    name = "fuzz"

    def handle(self, items: list) -> list:  # type: ignore[type-arg]
        return []


HANDLER = StageBatchHandler(Accept(), None, max_body_bytes=100_000, max_depth=32)


def one_input(data: bytes) -> None:
    try:
        value = safejson.loads(data, max_bytes=100_000)
    except safejson.InvalidJSON as exc:
        assert exc.reason
    else:
        redact(value, limit=2000)
    out = HANDLER([Delivery(body=data, queue="q", routing_key="k", headers={})])
    assert all(o.exchange == "parking" for o in out)
    shown = parking.shown_body(data, 2000)
    assert len(shown) < 2200 and "\x1b" not in shown
    redact_text(data.decode("utf-8", "replace"), limit=2000)
    odd = parking.Parked(Delivery(body=data, queue="q", routing_key="k",
                                  headers={"x-death": data, "x-msgd-reason": data}))
    assert odd.reason and isinstance(odd.key, str) and odd.replay("msgd") is None


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))  # "parked" lines
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
