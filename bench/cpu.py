"""CPU time and resident memory of the processes a bench run is made of, read from /proc.

A *role* ("router", "rabbitmq", "celery send", ...) is a set of root PIDs; its CPU is the
user + system time of every live process in those trees plus the time of the children they
have already reaped (``cutime``/``cstime``), so PostgreSQL backends that came and went, or
Celery pool processes, still count. Roles given without PIDs (the shared RabbitMQ or
PostgreSQL) are found by process name instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    cmd: str
    cpu: float  # seconds: own user+system plus reaped children's
    rss: int  # bytes


def _read(pid: int) -> _Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state) of proc(5): ppid 4, utime 14, stime 15, cutime 16, cstime 17, rss 24
    cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK
    return _Proc(pid, int(fields[1]), cmd, cpu, int(fields[21]) * PAGE)


def snapshot() -> dict[int, _Proc]:
    """Every process now, by PID."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            p = _read(int(name))
            if p is not None:
                out[p.pid] = p
    return out


def _tree(procs: Mapping[int, _Proc], roots: Iterable[int]) -> list[_Proc]:
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    seen, todo = [], [r for r in roots if r in procs]
    while todo:
        pid = todo.pop()
        seen.append(procs[pid])
        todo.extend(children.get(pid, []))
    return seen


def _by_name(p: _Proc, role: str) -> bool:
    if role == "rabbitmq":
        return "beam.smp" in p.cmd and "rabbit" in p.cmd
    if role == "postgresql":
        return p.cmd.startswith("postgres")
    return False


class Roles:
    """Role -> root PIDs; ``cpu()`` and ``rss()`` read them all at once."""

    def __init__(self) -> None:
        self.pids: dict[str, list[int]] = {}

    def add(self, role: str, *pids: int) -> None:
        """Count these process trees under ``role``; no PIDs: find the role's servers by name."""
        self.pids.setdefault(role, []).extend(pids)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far per role."""
        procs = snapshot()
        out: dict[str, float] = {}
        for role, roots in self.pids.items():
            members = _tree(procs, roots) if roots else [p for p in procs.values() if _by_name(p, role)]
            out[role] = sum(p.cpu for p in members)
        return out

    def rss(self) -> dict[str, int]:
        """Resident memory now per role, bytes (the sum over the role's processes)."""
        procs = snapshot()
        out: dict[str, int] = {}
        for role, roots in self.pids.items():
            members = _tree(procs, roots) if roots else [p for p in procs.values() if _by_name(p, role)]
            out[role] = sum(p.rss for p in members)
        return out


def diff(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds spent per role between two ``Roles.cpu()`` readings."""
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def self_cpu() -> float:
    """CPU seconds of this process (and its reaped children) so far."""
    t = os.times()
    return t.user + t.system
