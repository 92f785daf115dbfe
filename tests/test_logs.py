"""msgd.logs: one way out for msgd's lines and the libraries' (a real process, its real stderr)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT

CHILD = r"""
import logging, threading
import structlog
from msgd import logs
from msgd.redact import register_secrets

logs.configure("json", "DEBUG")
register_secrets(["Gateway-Pass-77"])
log = structlog.get_logger("msgd.test")
urllib3 = logging.getLogger("urllib3.connectionpool")

def chatter(n):
    for i in range(200):
        log.info("sent", message_id=f"{n}-{i}", reason="login ok, password Gateway-Pass-77")
        urllib3.debug('%s "%s %s HTTP/1.1" 200 2', "http://gw.test:80", "GET", f"/send?login=u&psw=Query-Pass-{n}{i}")

threads = [threading.Thread(target=chatter, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
try:
    raise RuntimeError("gateway said Gateway-Pass-77")
except RuntimeError:
    logging.getLogger("kombu").exception("library failure")
"""


def test_library_lines_are_json_redacted_and_never_interleaved() -> None:
    result = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=True)
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # every line is one JSON object
    ours = [e for e in lines if e["event"] == "sent"]
    urllib3 = [e for e in lines if e.get("logger") == "urllib3.connectionpool"]
    assert len(ours) == 800 and len(urllib3) == 800
    assert all(e["level"] == "debug" and "psw=***" in e["event"] for e in urllib3), urllib3[0]
    assert all("timestamp" in e for e in lines)
    (failure,) = [e for e in lines if e["event"] == "library failure"]
    assert failure["level"] == "error" and "RuntimeError" in failure["exception"]
    assert "Gateway-Pass-77" not in result.stderr and "Query-Pass-" not in result.stderr
