"""Printing bench figures, each with its goal beside it and whether it is met.

Every figure goes through ``figure()``: the line is printed at once (so a long run shows
progress) and kept, and ``summary()`` prints them all again at the end, the goals that were
not met listed last. The goals are the issue's (issue 14), never asserted: ``make bench``
measures, it does not pass or fail.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Goal:
    """``value >= low`` and/or ``value <= high``; ``text`` is how the goal is printed."""

    text: str
    low: float | None = None
    high: float | None = None

    def met(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass(frozen=True)
class Figure:
    """A measured value, as printed, with its goal and a note."""
    name: str
    value: float
    shown: str
    goal: Goal | None
    note: str

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.goal.met(self.value)

    def line(self) -> str:
        """The figure as one line: name, value, goal and met / NOT MET, note."""
        out = f"{self.name}: {self.shown}"
        if self.goal is not None:
            out += f"   [goal {self.goal.text}: {'met' if self.met else 'NOT MET'}]"
        if self.note:
            out += f"  ({self.note})"
        return out


FIGURES: list[Figure] = []


def say(text: str = "") -> None:
    """Print a line now (flushed: a long run shows progress)."""
    print(text)
    sys.stdout.flush()


def figure(name: str, value: float, shown: str, goal: Goal | None = None, note: str = "") -> Figure:
    """Record and print one figure; ``shown`` is the value as printed (with its unit)."""
    f = Figure(name, value, shown, goal, note)
    FIGURES.append(f)
    say("  " + f.line())
    return f


def ms(seconds: float) -> str:
    """Seconds as whole milliseconds ('n/a' for NaN)."""
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:,.0f} ms"


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary() -> None:
    """Every figure again; then the goals not met, by name."""
    say()
    say("== summary ==")
    for f in FIGURES:
        say(f.line())
    missed = [f.name for f in FIGURES if f.met is False]
    checked = [f for f in FIGURES if f.met is not None]
    say()
    if missed:
        say(f"goals met: {len(checked) - len(missed)} of {len(checked)}; not met: " + "; ".join(missed))
    else:
        say(f"goals met: {len(checked)} of {len(checked)}")
