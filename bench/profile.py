"""py-spy profiles of processes under load, summarised as the top costs per process.

``Profiler.start(role -> pid)`` attaches ``py-spy record --nonblocking`` (it samples from
outside without pausing the process, so the measured throughput is not changed much) to each
process; ``stop()`` ends the recordings (SIGINT: py-spy writes what it has) and returns, per
role, the share of samples in each function *inclusive* (anywhere on the stack) and *self*
(the innermost frame). Only samples of the thread holding the GIL count (``--gil``): the
Python work itself; time in C code that releases the GIL (socket and libpq I/O) is not shown.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter (the bench extra), or on PATH."""
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


def frame_name(raw: str) -> str:
    """'send (services/senders/stage.py:120)' -> 'send (services/senders/stage.py)' (lines merged)."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1].split("/", 1)[-1] if marker.endswith(".") else path.split(marker, 1)[1]
            break
    else:
        for top in ("/msgd/", "/services/", "/bench/"):  # this checkout's own code, wherever it is
            if top in path:
                path = path[path.index(top) + 1:]
                break
    return f"{name} ({path})" if path else name


class Profiler:
    """py-spy recorders attached to running processes, one per role."""
    def __init__(self, folder: Path, rate: int = 100) -> None:
        self.folder, self.rate = folder, rate
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, pids: dict[str, int]) -> bool:
        """Attach to each PID; False when py-spy is not installed."""
        exe = py_spy()
        if exe is None:
            return False
        for role, pid in pids.items():
            out = self.folder / f"profile-{role.replace(' ', '_')}.txt"
            self.procs[role] = subprocess.Popen(
                [exe, "record", "--pid", str(pid), "--format", "raw", "--nonblocking", "--gil", "--rate", str(self.rate),
                 "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return True

    def stop(self) -> dict[str, tuple[int, Counter[str], Counter[str]]]:
        """role -> (samples, inclusive counts, self counts)."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        out = {}
        for role, p in self.procs.items():
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
            path = self.folder / f"profile-{role.replace(' ', '_')}.txt"
            out[role] = summarise(path.read_text() if path.exists() else "")
        return out


def summarise(collapsed: str) -> tuple[int, Counter[str], Counter[str]]:
    """Collapsed stacks ('a;b;c 12' per line) -> (samples, inclusive, self) per function."""
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [frame_name(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        for f in set(frames):
            inclusive[f] += n
        if frames:
            own[frames[-1]] += n
    return total, inclusive, own


PROJECT = ("msgd/", "services/", "bench/")


def as_text(profiles: dict[str, tuple[int, Counter[str], Counter[str]]], top: int = 12) -> str:
    """A plain-text (Markdown) summary per role: msgd's own functions by inclusive share (where
    the time goes, in msgd's terms), then every function by self share (what it is spent on)."""
    lines = []
    for role, (total, inclusive, own) in profiles.items():
        lines.append(f"### {role} ({total} samples)")
        if not total:
            lines.append("(no samples)")
            continue
        lines.append("")
        lines.append("msgd's functions, inclusive (% of samples with the function on the stack):")
        plumbing = {"consume", "_consume_connected", "_process", "run_batch", "__call__", "run_gunicorn",
                    "main", "<module>", "run_stage", "cmd_run", "_handle"}  # the stage loop itself
        project = [(f, n) for f, n in inclusive.most_common()
                   if f.split(" (", 1)[-1].startswith(PROJECT) and f.split(" (")[0].rsplit(".", 1)[-1] not in plumbing]
        for f, n in project[:top]:
            lines.append(f"  {100 * n / total:5.1f}%  {f}")
        lines.append("every function, self (% of samples in the function itself):")
        for f, n in own.most_common(top):
            lines.append(f"  {100 * n / total:5.1f}%  {f}")
        lines.append("")
    return "\n".join(lines)
