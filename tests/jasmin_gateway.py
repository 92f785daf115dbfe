"""A real Jasmin SMS gateway for tests (issue 15): PyPI ``jasmin`` 0.11.1 in a venv of its own.

Jasmin (https://docs.jasminsms.com) is Twisted software with pinned dependencies (Twisted 23.10,
txAMQP3, txredisapi, celery ...), so it never enters msgd's venv: :func:`ensure_venv` installs it
once from PyPI into ``~/.cache/msgd-test-jasmin/venv-0.11.1`` (``MSGD_JASMIN_CACHE`` moves it;
``make jasmin-venv``, run by ``make test``, does the same ahead of the suite), under a file lock so
two test runs never build it at once, and applies :data:`FIXES` there, idempotently:

* **DLR handling** (jookies/jasmin#1236; first reported as #1199 against the change of PR #1187):
  0.11.1's ``submit_sm_resp`` handler builds the message for its DLR lookup from ``_pdu.response``,
  but ``_pdu`` became the *request* PDU, which has no ``response``: every submit logs an
  AttributeError, the SMSC's message id is never mapped to Jasmin's, and each receipt ends
  "DLRMapNotFound" — no DLR ever reaches the ``dlr-url``. The fix reads ``r.response``, the
  ``submit_sm_resp`` itself.
* **Redis ``dbid``** ignored: ``jasmin.redis.client.makeConnection`` hands ``None`` instead of
  ``dbid`` to its factory, so Jasmin always writes Redis database 0 whatever ``[redis-client]
  dbid`` says. The fix passes ``dbid``.

:class:`JasminGateway` runs ``jasmind`` with a private root (``ROOT_PATH``: its config, store
and logs), its own ports, a private RabbitMQ vhost (made with ``rabbitmqctl``, deleted after) and
a private Redis database (flushed before and after), starts the DLR lookup and thrower inside the
one process, and configures it through jCli (Jasmin's telnet console): an SMPP client connector to
the given SMSC, a group, a user for the HTTP API and a default MT route. It is started through a
small launcher instead of ``jasmind.py``, whose ``__main__`` takes the machine-wide lock
``/tmp/jasmind`` (one jasmind per machine, stale after a kill) — nothing else differs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import SplitResult, unquote, urlsplit

from tests.support import free_port

JASMIN_VERSION = "0.11.1"
CACHE = Path(os.environ.get("MSGD_JASMIN_CACHE") or Path.home() / ".cache" / "msgd-test-jasmin")
_redis = os.environ.get("MSGD_TEST_REDIS", "127.0.0.1:6379").rpartition(":")
REDIS_HOST, REDIS_PORT = _redis[0] or "127.0.0.1", int(_redis[2])


@dataclass(frozen=True)
class Fix:
    """One upstream bug fixed in the installed copy: ``old`` becomes ``new`` in ``path``."""

    name: str
    path: str  # relative to site-packages
    old: str
    new: str


FIXES = (
    Fix("DLR lookup after submit_sm_resp (jookies/jasmin#1236)", "jasmin/managers/listeners.py",
        "dlr = DLR(pdu_type=_pdu.response.id, msgid=msgid, status=_pdu.response.status,\n"
        "                          smpp_msgid=_pdu.response.params['message_id'])\n"
        "            else:\n"
        "                dlr = DLR(pdu_type=_pdu.response.id, msgid=msgid, status=_pdu.response.status)",
        "dlr = DLR(pdu_type=r.response.id, msgid=msgid, status=r.response.status,\n"
        "                          smpp_msgid=r.response.params['message_id'])\n"
        "            else:\n"
        "                dlr = DLR(pdu_type=r.response.id, msgid=msgid, status=r.response.status)"),
    Fix("Redis dbid ignored", "jasmin/redis/client.py",
        "factory = RedisForJasminFactory(uuid, None, poolsize,",
        "factory = RedisForJasminFactory(uuid, dbid, poolsize,"),
)

LAUNCHER = '''"""jasmind without the machine-wide /tmp/jasmind lock (tests/jasmin_gateway.py)."""
import signal
from twisted.internet import reactor
from jasmin.bin.jasmind import JasminDaemon, Options

options = Options()
options.parseOptions()
daemon = JasminDaemon(options)
signal.signal(signal.SIGINT, daemon.sighandler_stop)
signal.signal(signal.SIGTERM, daemon.sighandler_stop)
daemon.start()
reactor.run()
'''


def venv_dir() -> Path:
    return CACHE / f"venv-{JASMIN_VERSION}"


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise RuntimeError(f"no site-packages in {venv}")
    return found[0]


def apply_fixes(venv: Path) -> list[str]:
    """Apply :data:`FIXES` to the venv's jasmin (idempotent); the names of the fixes applied now.

    RuntimeError when a file has neither the old nor the fixed text (another jasmin release)."""
    applied = []
    for fix in FIXES:
        path = site_packages(venv) / fix.path
        text = path.read_text()
        if fix.new in text:
            continue
        if fix.old not in text:
            raise RuntimeError(f"jasmin {JASMIN_VERSION}: cannot apply '{fix.name}' to {path}: the code differs")
        path.write_text(text.replace(fix.old, fix.new))
        applied.append(fix.name)
    return applied


def ensure_venv(log: Path | None = None) -> Path:
    """The venv with jasmin installed from PyPI and fixed (built on first use, ~90 s; a build that
    stopped half-way has no stamp and is built again). CalledProcessError when pip fails."""
    venv = venv_dir()
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = venv / ".installed"
        if not stamp.exists():
            shutil.rmtree(venv, ignore_errors=True)
            with (log.open("ab") if log else open(os.devnull, "wb")) as out:
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=out, stderr=out)
                subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                                "--disable-pip-version-check", f"jasmin=={JASMIN_VERSION}"],
                               check=True, stdout=out, stderr=out, timeout=900)
            stamp.write_text(JASMIN_VERSION + "\n")
        apply_fixes(venv)
    return venv


# -- services -----------------------------------------------------------------------------------


def redis_command(db: int, *args: str, timeout: float = 5.0) -> object:
    """One Redis command on database ``db`` (RESP, https://redis.io/docs/reference/protocol-spec/):
    its reply as bytes, an int, None or a list; RuntimeError for an error reply."""

    def encode(*parts: str) -> bytes:
        return f"*{len(parts)}\r\n".encode() + b"".join(f"${len(p.encode())}\r\n{p}\r\n".encode() for p in parts)

    def read(f: BinaryIO) -> object:
        line = f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"-":
            raise RuntimeError(f"redis: {rest.decode(errors='replace')}")
        if kind == b"+":
            return rest
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else f.read(n + 2)[:-2]
        if kind == b"*":
            return [read(f) for _ in range(int(rest))]
        raise RuntimeError(f"redis: unexpected reply {line!r}")

    with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=timeout) as s, s.makefile("rb") as f:
        s.sendall(encode("SELECT", str(db)) + encode(*args))
        read(f)
        return read(f)


def redis_keys(db: int, pattern: str = "*") -> list[str]:
    """Key names in database ``db`` that match ``pattern``."""
    reply = redis_command(db, "KEYS", pattern)
    assert isinstance(reply, list)
    return sorted(k.decode() for k in reply)


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)


def private_vhost(name: str, user: str = "guest") -> bool:
    """Create the vhost with all permissions for ``user``; False when rabbitmqctl cannot."""
    return (shutil.which("rabbitmqctl") is not None and rabbitmqctl("add_vhost", name).returncode == 0
            and rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*").returncode == 0)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def redis_reachable() -> bool:
    """Whether the Redis of ``MSGD_TEST_REDIS`` (host:port, default 127.0.0.1:6379) answers."""
    return port_open(REDIS_PORT, REDIS_HOST)


# -- jCli ---------------------------------------------------------------------------------------


class JCli:
    """Jasmin's console (telnet, https://docs.jasminsms.com/en/latest/management/jcli/): one
    command a line, ``jcli : `` at the top level and ``> `` inside an add session."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self._read_until(lambda buf: re.search(rb"Session ref: \d+\s*\n", buf) is not None)  # the banner

    def _read_until(self, done: Callable[[bytes], bool]) -> str:
        buf, deadline = b"", time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            buf += chunk
            if done(buf):
                return _plain(buf)
        raise RuntimeError(f"jCli: no answer after {buf[-300:]!r}")

    def _read_prompt(self) -> str:
        return self._read_until(lambda buf: buf.rstrip().endswith((b"jcli :", b">")))

    def run(self, line: str) -> str:
        """One line; what jCli answered (without the echo and the prompt)."""
        self.sock.sendall(line.encode() + b"\r\n")
        return self._read_prompt()

    def add(self, command: str, **fields: str) -> str:
        """``command -a``, ``key value`` lines, ``ok``; RuntimeError unless jCli says "Successfully"."""
        out = [self.run(f"{command} -a")]
        out += [self.run(f"{key} {value}") for key, value in fields.items()]
        done = self.run("ok")
        if "Successfully" not in done:
            self.run("ko")
            raise RuntimeError(f"jCli {command} -a failed: {' | '.join(out + [done])}")
        return done

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b"quit\r\n")
        self.sock.close()


def _plain(data: bytes) -> str:
    """Telnet negotiation (IAC ...) and terminal escapes out; the text jCli printed."""
    out, i = bytearray(), 0
    while i < len(data):
        if data[i] == 0xFF and i + 1 < len(data):
            i += 3 if data[i + 1] in (0xFB, 0xFC, 0xFD, 0xFE) else 2
            continue
        out.append(data[i])
        i += 1
    return out.decode("utf-8", errors="replace").replace("\r", "")


# -- the gateway --------------------------------------------------------------------------------


@dataclass
class JasminGateway:
    """One jasmind on private ports, vhost and Redis database (see the module's docstring)."""

    venv: Path
    root: Path
    vhost: str
    redis_db: int
    amqp: SplitResult  # the shared RabbitMQ (its vhost is replaced by ``vhost``)
    http_port: int = 0
    jcli_port: int = 0
    user: str = "msgd"
    password: str = "msgd-pw"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def send_url(self) -> str:
        """The HTTP API's /send (https://docs.jasminsms.com/en/latest/apis/ja-http/)."""
        return f"http://127.0.0.1:{self.http_port}/send"

    @property
    def log_dir(self) -> Path:
        return self.root / "var" / "log" / "jasmin"

    def write_config(self) -> Path:
        self.http_port, self.jcli_port = free_port(), free_port()
        ports = {name: free_port() for name in ("smpp-server", "smpp-server-pb", "client-management", "router")}
        spec = site_packages(self.venv) / "txamqp" / "specs" / "standard" / "amqp0-9-1.stripped.xml"
        sections = {
            **{name: {"bind": "127.0.0.1", "port": str(port)} for name, port in ports.items()},
            "http-api": {"bind": "127.0.0.1", "port": str(self.http_port)},
            "jcli": {"bind": "127.0.0.1", "port": str(self.jcli_port), "authentication": "False"},
            # The wheel lacks Jasmin's resource/amqp0-9-1.xml: txAMQP's own copy of the spec serves.
            "amqp-broker": {"host": self.amqp.hostname or "127.0.0.1", "port": str(self.amqp.port or 5672),
                            "vhost": self.vhost, "username": unquote(self.amqp.username or "guest"),
                            "password": unquote(self.amqp.password or "guest"), "spec": str(spec)},
            "redis-client": {"host": REDIS_HOST, "port": str(REDIS_PORT), "dbid": str(self.redis_db),
                             "poolsize": "3"},
            # A receipt that overtakes its submit_sm_resp's mapping is looked up again after 1 s, not 10.
            "dlr": {"dlr_lookup_retry_delay": "1", "dlr_lookup_max_retries": "5"},
            "dlr-thrower": {"http_timeout": "30", "retry_delay": "2", "max_retries": "3"},
        }
        etc = self.root / "etc" / "jasmin"
        (etc / "store").mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cfg = etc / "jasmin.cfg"
        cfg.write_text("".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items()) + "\n"
                               for name, opts in sections.items()))
        return cfg

    def start(self, timeout: float = 60.0) -> JasminGateway:
        cfg = self.write_config()
        launcher = self.root / "run_jasmind.py"
        launcher.write_text(LAUNCHER)
        env = {k: v for k, v in os.environ.items()
               if k not in ("REDIS_URL", "CLOUDAMQP_URL", "CONFIG_PATH", "LOG_PATH", "STORE_PATH",
                            "RESOURCE_PATH", "PYTHONPATH", "VIRTUAL_ENV")}
        env.update(ROOT_PATH=str(self.root), PYTHONDONTWRITEBYTECODE="1")
        with (self.root / "jasmind.out").open("ab") as out:
            self.proc = subprocess.Popen(
                [str(self.venv / "bin" / "python"), str(launcher), "--config", str(cfg),
                 "--enable-dlr-lookup", "--enable-dlr-thrower"],
                cwd=self.root, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not (port_open(self.jcli_port) and port_open(self.http_port)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jasmind did not start:\n{self.output()[-3000:]}")
            time.sleep(0.1)
        return self

    def configure(self, smsc_port: int, system_id: str, password: str) -> None:
        """An SMPP client connector ``SIM`` to the SMSC, started; group, HTTP user, default route."""
        cli = JCli(self.jcli_port)
        try:
            cli.add("smppccm", cid="SIM", host="127.0.0.1", port=str(smsc_port), username=system_id,
                    password=password, submit_throughput="0", con_fail_delay="1", con_loss_delay="1")
            started = cli.run("smppccm -1 SIM")
            if "Successfully" not in started:
                raise RuntimeError(f"jCli: connector not started: {started}")
            cli.add("group", gid="msgd")
            cli.add("user", uid="msgd", gid="msgd", username=self.user, password=self.password)
            cli.add("mtrouter", type="DefaultRoute", connector="smppc(SIM)", rate="0.00")
        finally:
            cli.close()

    def output(self) -> str:
        """jasmind's console output and its log files (for a failing test's message)."""
        parts = [(self.root / "jasmind.out")] + sorted(self.log_dir.glob("*.log"))
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')}" for p in parts if p.exists())

    def log(self, name: str) -> str:
        path = self.log_dir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextlib.contextmanager
def running_jasmin(root: Path, redis_db: int, amqp_url: str) -> Iterator[JasminGateway]:
    """Venv, private vhost and Redis database, jasmind: up for the block, cleaned up after.
    RuntimeError when the venv cannot be built (no PyPI) or the vhost cannot be made
    (rabbitmqctl missing or not allowed)."""
    try:
        venv = ensure_venv(root / "pip.log")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pip_log = (root / "pip.log").read_text(errors="replace")[-1500:] if (root / "pip.log").exists() else ""
        raise RuntimeError(f"pip install jasmin=={JASMIN_VERSION} failed ({exc}): {pip_log}") from None
    vhost = f"msgd-jasmin-{os.getpid()}-{int(time.time())}"
    user = unquote(urlsplit(amqp_url).username or "guest")
    if not private_vhost(vhost, user):
        raise RuntimeError("rabbitmqctl could not make a private vhost for Jasmin (run the tests as root)")
    redis_command(redis_db, "FLUSHDB")
    gw = JasminGateway(venv, root, vhost, redis_db, urlsplit(amqp_url))
    try:
        yield gw.start()
    finally:
        gw.stop()
        rabbitmqctl("delete_vhost", vhost)
        redis_command(redis_db, "FLUSHDB")


if __name__ == "__main__":  # make jasmin-venv: the venv ahead of the test run
    print(f"jasmin {JASMIN_VERSION} in {ensure_venv()} (fixes: {', '.join(f.name for f in FIXES)})")
