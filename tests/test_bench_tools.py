"""The bench's own tools: goals, quantiles, the CPU accounting of process trees, the gateway
it measures with, and the profile summary. (The bench's figures are never asserted: this
checks that what it counts is counted right.)"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.cpu import Roles
from bench.gateway import Gateway, Received
from bench.profile import as_text, frame_name, summarise
from bench.report import Goal, pct
from bench.scenarios_burst import analyse

ROOT = Path(__file__).resolve().parent.parent


def test_goals_and_quantiles() -> None:
    assert Goal(">= 4x", low=4).met(4.0) and not Goal(">= 4x", low=4).met(3.99)
    assert Goal("50 +- 5", low=45, high=55).met(47.1) and not Goal("50 +- 5", low=45, high=55).met(56)
    assert not Goal("<= 2 ms", high=2).met(float("nan"))
    assert pct(list(range(1, 101)), 0.99) == 100 and pct([3, 1, 2], 0.5) == 2
    assert pct([], 0.5) != pct([], 0.5)  # NaN


def test_throughput_and_latency_of_a_range() -> None:
    rows = [Received(n, t0=10.0 + n * 0.01, at=11.0 + n * 0.02) for n in range(100)]
    rows.append(Received(5000, t0=0.0, at=100.0))  # outside the range: ignored
    got, rate, p50, p99 = analyse(rows, 0, 100)
    assert got == 100
    assert rate == pytest.approx(100 / (11.0 + 99 * 0.02 - 10.0))
    assert p50 == pytest.approx(1.0 + 50 * 0.01) and p99 == pytest.approx(1.0 + 99 * 0.01)


BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def test_cpu_of_a_role_counts_its_tree_and_reaped_children() -> None:
    script = (BURN.format(s=0.3) + "import subprocess, sys\n"
              f"subprocess.run([sys.executable, '-c', {BURN.format(s=0.4)!r}], check=True)\n"
              "print('done', flush=True)\nsys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "done"
        roles = Roles()
        roles.add("worker", proc.pid)
        spent = roles.cpu()["worker"]
        assert 0.65 <= spent < 5.0, spent  # its own 0.3 s and the reaped child's 0.4 s
        assert roles.rss()["worker"] > 1_000_000
    finally:
        proc.kill()
        proc.wait(10)


def test_the_gateway_counts_and_reports_what_it_received(tmp_path: Path) -> None:
    gw = Gateway(tmp_path).start()
    try:
        t0 = time.time()
        for n in (7, 8):
            body = f"login=best&phones=%2B79120000000&mes={n}%7C{t0:.6f}%7C%D0%A2%D0%B5%D0%BA%D1%81%D1%82".encode()
            with urllib.request.urlopen(urllib.request.Request(gw.url, data=body), timeout=10) as r:
                assert r.read() == b"OK"
        assert gw.wait(2, 10) and gw.count() == 2
    finally:
        rows = gw.stop()
    assert [r.n for r in rows] == [7, 8]
    assert all(r.t0 == pytest.approx(t0, abs=1e-6) and r.at >= r.t0 for r in rows)


def test_profile_summary_names_msgds_functions_wherever_the_checkout_is() -> None:
    assert frame_name("route (/work/elsewhere/services/router/stage.py:12)") == "route (services/router/stage.py)"
    assert frame_name("validate (/x/.venv/lib/python3.11/site-packages/jsonschema/v.py:3)") == "validate (jsonschema/v.py)"
    collapsed = ("AmqpBroker.consume (/w/msgd/broker/amqp.py:1);RouterStage.route (/w/services/router/stage.py:2);"
                 "descend (/v/site-packages/jsonschema/validators.py:9) 6\n"
                 "AmqpBroker.consume (/w/msgd/broker/amqp.py:1);_read (/v/site-packages/amqp/transport.py:4) 4\n")
    total, inclusive, own = summarise(collapsed)
    assert total == 10 and own["descend (jsonschema/validators.py)"] == 6
    text = as_text({"router": (total, inclusive, own)})
    assert "60.0%  RouterStage.route (services/router/stage.py)" in text
    assert "AmqpBroker.consume" not in text  # the stage loop itself is left out


def test_bench_modules_stay_small() -> None:
    long = {p.name: n for p in (ROOT / "bench").glob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
