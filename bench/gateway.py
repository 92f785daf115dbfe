"""A fast local SMS gateway for the benchmark (asyncio, HTTP/1.1 keep-alive).

Records the receive time of every request's ``mes`` parameter and writes them
as JSON lines to the file named on the command line when it gets SIGTERM.
Optional fixed latency per request (``--latency 0.1``) emulates a slow gateway.
``GET /count`` answers how many requests it has received so far.

``Gateway`` starts it as a process of its own and reads it back; the texts the bench's
templates make start with ``n|t0|``: the event's number and its publish time (epoch seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Received:
    """One request the gateway got: event number, publish time and receive time (epoch s)."""

    n: int
    t0: float
    at: float


class Gateway:
    """The gateway as a child process on a free port of 127.0.0.1."""

    def __init__(self, folder: Path, latency: float = 0.0) -> None:
        self.folder, self.latency = folder, latency
        self.out = folder / "gateway.jsonl"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> Gateway:
        """Start the process; waits until it listens (RuntimeError if it does not within 20 s)."""
        port_file = self.folder / "gateway.port"
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.gateway", str(port_file), str(self.out),
                                      "--latency", str(self.latency)], cwd=ROOT)
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("bench gateway did not start")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        return self

    @property
    def url(self) -> str:
        """The URL msgd's (and the reference's) SMS channel posts to."""
        return f"http://127.0.0.1:{self.port}/send"

    def count(self) -> int:
        """Requests received so far (GET /count)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/count", timeout=10) as r:
            return int(r.read())

    def wait(self, total: int, timeout: float) -> bool:
        """Poll until ``total`` requests arrived; False at the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= total:
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> list[Received]:
        """Stop it; every request it received, in arrival order."""
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
        out = []
        if self.out.exists():
            for line in self.out.read_text().splitlines():
                row = json.loads(line)
                n, t0, _ = row["text"].split("|", 2)
                out.append(Received(int(n), float(t0), row["at"]))
        return out


async def main(port_file: str, out: str, latency: float) -> None:
    seen: list[tuple[float, str]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                if head.startswith(b"GET /count"):
                    n = str(len(seen)).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(n), n))
                    await writer.drain()
                    continue
                at = time.time()
                text = parse_qs(body.decode()).get("mes", [""])[0]
                seen.append((at, text))
                if latency:
                    await asyncio.sleep(latency)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK")
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    with open(port_file, "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    with open(out, "w") as f:
        for at, text in seen:
            f.write(json.dumps({"at": at, "text": text}) + "\n")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("port_file")
    p.add_argument("out")
    p.add_argument("--latency", type=float, default=0.0)
    a = p.parse_args()
    asyncio.run(main(a.port_file, a.out, a.latency))
