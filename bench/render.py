"""The renderer against raw compiled Django on the same template, in one process.

msgd: ``services.renderer.render.render(template, event)`` as the renderer stage calls it for
each message: the event's fields are flattened and normalised (money, dates), the Django
template (compiled once, cached) rendered in msgd's sandboxed engine, blank edge lines
trimmed and the text checked storable. Raw Django: ``Template.render(Context(values))`` of the
same source compiled once by a plain ``django.template.Engine``, with the values already
flat. Goal: msgd >= 50 % of raw Django's renders per second of CPU. The two are timed in
alternating rounds (five each, best of each kept) by this process's CPU time, not the wall
clock: on a shared machine another process's load would otherwise land on one side only.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.events import event
from bench.report import Goal, figure, say

SOURCE = (
    "Уважаемый абонент {{ name }}!\n"
    "Баланс по договору {{ contract_number }}: {{ balance|floatformat:2 }} {{ currecy }}\n"
    "{% if balance < 0 %}Чтобы услуги не были приостановлены, пополните счёт на"
    " {{ recomend_pay_sum|floatformat:2 }} {{ currecy }}.{% endif %}"
)


def _rounds(fns: list[Callable[[], Any]], rounds: int = 5, seconds: float = 0.4) -> list[float]:
    """Calls per CPU second of each of ``fns``, timed in turn ``rounds`` times (about
    ``seconds`` of CPU each); the best round of each."""
    best = [0.0] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            n, start = 0, time.process_time()
            while (elapsed := time.process_time() - start) < seconds:
                for _ in range(100):
                    fn()
                n += 100
            best[i] = max(best[i], n / elapsed)
    return best


def render_scenario() -> None:
    """Time msgd's render and raw Django on the same template; print the share with its goal."""
    say("\n== rendering: msgd's renderer vs raw compiled Django, same template ==")
    with tempfile.TemporaryDirectory(prefix="msgd-bench-render-") as tmp:
        from msgd.store import setup

        setup(f"sqlite:///{tmp}/render.sqlite3")  # Django configured; no query is made
        from django.template import Context, Engine

        from services.renderer.render import render

        ev = event("render", 1)
        ev["abonent"].update({"contract_number": "Д-1319", "recomend_pay_sum": 350})
        template = {"id": 1, "name": "bench", "subject": "", "body": SOURCE, "use_django": True}
        ours = render(template, ev).body
        compiled = Engine(debug=False).from_string(SOURCE)
        values = {"name": "Абонент 1", "contract_number": "Д-1319", "balance": -12.5, "currecy": "руб.",
                  "recomend_pay_sum": 350}
        raw = compiled.render(Context(values))
        if ours.strip() != raw.strip():
            say(f"  note: the texts differ:\n    msgd: {ours!r}\n    raw:  {raw!r}")
        msgd_rate, raw_rate = _rounds([lambda: render(template, ev), lambda: compiled.render(Context(values))])
    share = msgd_rate / raw_rate
    figure("renderer vs raw compiled Django", share,
           f"msgd {msgd_rate:,.0f} renders per CPU second, raw Django {raw_rate:,.0f} = {share:.0%}", Goal(">= 50 %", low=0.5))
