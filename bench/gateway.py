"""A fast local SMS gateway for the benchmark (asyncio, HTTP/1.1 keep-alive).

Records the receive time of every request's ``mes`` parameter and writes them
as JSON lines to the file named on the command line when it gets SIGTERM.
Optional fixed latency per request (``--latency 0.1``) emulates a slow gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from urllib.parse import parse_qs


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
