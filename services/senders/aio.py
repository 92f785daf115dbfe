"""One asyncio event loop per sender, in its own thread, and the HTTP client that runs on it.

A thread per request (``requests`` on a pool of ``MSGD_SENDER_CONCURRENCY`` threads) spent
most of the SMS sender's CPU in urllib3 and in hand-offs between threads. Here every request of
a sender process runs on one event loop (``LoopThread``), through one aiohttp ``ClientSession``
(``AioHttp``): a keep-alive connection pool of at most ``limit`` connections, reused across
messages and batches. The sender stage submits coroutines from its own thread and collects
their results as concurrent futures; synchronous callers (the web admin's test message, msgd
doctor) run the same coroutine and wait for it (``LoopThread.run``).

Channels without an asyncio transport (e-mail, Telegram, web push) keep their blocking
``send``: the loop runs it on its default executor, a pool of ``workers`` threads.

aiohttp: https://docs.aiohttp.org/en/stable/client_reference.html (ClientSession,
TCPConnector ``limit`` / ``keepalive_timeout``, ClientTimeout ``sock_connect`` / ``sock_read``).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import ssl
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from services.senders.bodies import decode_body

T = TypeVar("T")

# Seconds an idle kept-alive connection stays open: below the 15 s and more most HTTP servers
# keep one, so msgd, not the gateway, closes it (a request never meets a connection being closed).
KEEPALIVE_SECONDS = 10.0
# Seconds close() lets requests in flight finish before the loop stops.
CLOSE_GRACE = 30.0


class LoopThread:
    """An asyncio event loop running in a daemon thread, started on first use.

    ``submit`` schedules a coroutine from any thread and returns a ``concurrent.futures.Future``;
    ``run`` waits for its result (RuntimeError when called on the loop's own thread, which would
    wait for itself). ``workers`` threads run blocking calls handed to the loop's executor."""

    def __init__(self, name: str, workers: int) -> None:
        self.name = name
        self.workers = max(1, workers)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix=f"{self.name}-blocking"))
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name=self.name, daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def on_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.on_loop_thread():
            coro.close()
            raise RuntimeError("a blocking call on the event loop's own thread would wait for itself")
        return self.submit(coro).result()

    def close(self, cleanup: Coroutine[Any, Any, Any] | None = None) -> None:
        """Let the requests in flight finish (``CLOSE_GRACE`` at most), run ``cleanup``, stop."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            if cleanup is not None:
                cleanup.close()
            return

        async def finish() -> None:
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if others:
                await asyncio.wait(others, timeout=CLOSE_GRACE)
            if cleanup is not None:
                await cleanup

        with contextlib.suppress(Exception):  # stopping anyway
            asyncio.run_coroutine_threadsafe(finish(), loop).result(CLOSE_GRACE + 10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()


@dataclass
class Answer:
    """A far side's HTTP answer, read whole."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    charset: str | None  # from Content-Type, when it names one

    def text(self) -> str:
        """The body as text, as :func:`services.senders.net.decode_body` reads it."""
        return decode_body(self.body, self.charset)


def basic_auth(login: str, password: str) -> str:
    """The Authorization header value of HTTP basic auth (RFC 7617), encoded as requests does it
    (Latin-1: a character outside it raises UnicodeEncodeError, a setting to fix)."""
    token = base64.b64encode(f"{login}:{password}".encode("latin-1")).decode("ascii")
    return f"Basic {token}"


class AioHttp:
    """One aiohttp session with a keep-alive pool of at most ``limit`` connections; use it on
    the loop it was first used on. Cookies are not kept (each request stands alone), and the
    environment's proxy settings are not read (only the operator's settings decide)."""

    def __init__(self, user_agent: str, limit: int) -> None:
        self.user_agent = user_agent
        self.limit = max(1, limit)
        self._session: Any = None
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._timeouts: dict[float, Any] = {}

    def _ssl(self, verify: bool | str) -> Any:
        if verify is False:
            return False
        if verify is True:
            return True
        found = self._contexts.get(verify)
        if found is None:
            found = self._contexts[verify] = ssl.create_default_context(cafile=verify)
        return found

    async def request(self, method: str, url: str, *, body: bytes | None, headers: Mapping[str, str],
                      auth: tuple[str, str] | None, timeout: float, verify: bool | str) -> Answer:
        """Send one request and read the whole answer. ``timeout`` (seconds) bounds connecting and
        each wait for data, as requests' timeout does; ``verify`` is True, False or a CA bundle path.
        Raises what aiohttp raises (services/senders/aio_errors.py words it)."""
        import aiohttp

        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.limit, limit_per_host=0,
                                             keepalive_timeout=KEEPALIVE_SECONDS)
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                headers={"User-Agent": self.user_agent}, raise_for_status=False)
        sent = dict(headers)
        if auth is not None:
            sent["Authorization"] = basic_auth(*auth)
        limits = self._timeouts.get(timeout)
        if limits is None:
            limits = self._timeouts[timeout] = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=timeout,
                                                                     sock_read=timeout)
        async with self._session.request(method, url, data=body, headers=sent, timeout=limits,
                                         ssl=self._ssl(verify)) as resp:
            data = await resp.read()
            return Answer(resp.status, resp.headers, data, resp.charset)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
