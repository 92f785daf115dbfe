"""``msgd doctor`` against real local servers: closed ports, an unresolvable name,
a self-signed TLS server, aiosmtpd with AUTH, a Bot API emulator, RabbitMQ and the store."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from msgd import doctor
from services.senders.email.doctor import probe as email_probe
from services.senders.probe import ProbeRequest, check_http
from services.senders.sms.doctor import probe as sms_probe
from services.senders.telegram.doctor import probe as telegram_probe
from tests import seed
from tests.support import Pipeline, free_port, msgd
from tests.test_sender_email import LOGIN, PASSWORD, smtp  # noqa: F401 - fixture
from tests.test_sender_telegram import TOKEN, BotApi, api  # noqa: F401 - fixture


@pytest.fixture
def tls_server(cert: tuple[Path, Path]) -> Iterator[int]:
    """A TLS server with a self-signed certificate (completes handshakes, then closes)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield int(listener.getsockname()[1])
    stop.set()
    listener.close()


def check_sms(subject: str, values: dict[str, Any]) -> list[doctor.Finding]:
    return sms_probe(ProbeRequest(subject, values))


def check_smtp(subject: str, params: dict[str, Any], secrets: dict[str, Any], sender: str = "") -> list[doctor.Finding]:
    return email_probe(ProbeRequest(subject, {**params, **secrets}, sender=sender))


def check_telegram(subject: str, params: dict[str, Any], secrets: dict[str, Any]) -> list[doctor.Finding]:
    return telegram_probe(ProbeRequest(subject, {**params, **secrets}))


def levels(found: list[doctor.Finding]) -> list[str]:
    return [f.level for f in found]


def text(found: list[doctor.Finding]) -> str:
    return "\n".join(f.render() for f in found)


def test_closed_port_is_connection_refused() -> None:
    found = check_sms("sms", {"url": f"http://127.0.0.1:{free_port()}/send"})
    assert levels(found) == [doctor.PROBLEM]
    assert "connection refused" in text(found) and "contact the provider" in text(found)


def test_unresolvable_host_is_a_dns_finding() -> None:
    found = check_smtp("email", {"host": "smtp.nonexistent.invalid", "port": 465, "security": "ssl"}, {})
    assert levels(found) == [doctor.PROBLEM]
    assert "Name or service not known" in text(found) and "DNS" in text(found)


def test_self_signed_certificate_is_an_ssl_certificate_problem(tls_server: int) -> None:
    found = check_http("sms", f"https://localhost:{tls_server}/send")
    assert levels(found) == [doctor.PROBLEM]
    assert "SSL certificate problem" in text(found) and "ca_bundle" in text(found)


def test_trusted_certificate_reports_its_expiry(tls_server: int, cert: tuple[Path, Path]) -> None:
    found = check_http("sms", f"https://localhost:{tls_server}/send", str(cert[0]))
    # the test certificate lives two days: valid, but expiring soon
    assert doctor.PROBLEM not in levels(found)
    assert "expires on" in text(found) and "renew" in text(found)


def test_smtp_login_ok_and_wrong_password(smtp: Any) -> None:  # noqa: F811
    # The login is a secret, as msgd config load and the web admin store it (the sender reads it there).
    params = {"host": "127.0.0.1", "port": smtp.port, "security": "none"}
    good = check_smtp("email", params, {"login": LOGIN, "password": PASSWORD}, sender="noc@best.example")
    assert doctor.PROBLEM not in levels(good), text(good)
    assert f"logged in as {LOGIN}" in text(good)
    bad = check_smtp("email", params, {"login": LOGIN, "password": "wrong-password-1"})
    assert levels(bad)[-1] == doctor.PROBLEM
    assert "login as mailer refused (535" in text(bad) and "check login and password" in text(bad)
    assert "wrong-password-1" not in text(bad)


def test_smtp_sender_refused_is_553(smtp: Any) -> None:  # noqa: F811
    smtp.sink.mail_reply = "553 5.7.1 Sender address rejected: not owned by user"
    found = check_smtp("email", {"host": "127.0.0.1", "port": smtp.port, "security": "none"}, {},
                              sender="robot@isp.example")
    assert "refuses the sender robot@isp.example (553" in text(found)
    assert "operator's e-mail" in text(found)


def test_smtps_is_probed_with_tls_as_the_sender_connects(tls_server: int) -> None:
    # "smtps" is the e-mail sender's alias for ssl: implicit TLS, so the certificate is checked
    # (read as plain SMTP, the TLS server would never send a greeting).
    found = check_smtp("email", {"host": "localhost", "port": tls_server, "security": "smtps"}, {})
    assert levels(found) == [doctor.PROBLEM]
    assert "SSL certificate problem with localhost" in text(found)


def test_settings_the_sender_refuses_are_a_problem_not_a_crash() -> None:
    port = check_smtp("email", {"host": "127.0.0.1", "port": "twenty-five"}, {})
    assert levels(port) == [doctor.PROBLEM]
    assert "settings are invalid: port: must be a port number 1..65535, got 'twenty-five'" in text(port)
    assert "msgd config load" in text(port)
    security = check_smtp("email", {"host": "127.0.0.1", "security": "tls"}, {})
    assert levels(security) == [doctor.PROBLEM] and "security: 'tls' is ambiguous" in text(security)
    token = check_telegram("telegram", {"api_url": "ftp://example.org"}, {"token": TOKEN})
    assert levels(token) == [doctor.PROBLEM] and "settings are invalid: api_url: 'ftp://example.org' is not a valid http(s) URL" in text(token)
    preset = check_sms("sms", {"preset": "no-such-gateway"})
    assert levels(preset) == [doctor.PROBLEM] and "settings are invalid" in text(preset)
    slow = check_sms("sms", {"url": "http://127.0.0.1:9/send", "timeout": "soon"})
    assert levels(slow) == [doctor.PROBLEM] and "settings are invalid: timeout: must be a number, got 'soon'" in text(slow)
    assert check_http("sms", "http://[bad/send")[0].level == doctor.PROBLEM


def test_a_login_stored_among_the_plain_settings_is_still_the_login(smtp: Any) -> None:  # noqa: F811
    # Rows written by hand or by an older msgd: the model reads params and secrets together, as the
    # sender does, so the probe logs in exactly as a message would.
    params = {"host": "127.0.0.1", "port": smtp.port, "security": "none", "login": LOGIN}
    found = check_smtp("email", params, {"password": PASSWORD})
    assert doctor.PROBLEM not in levels(found) and f"logged in as {LOGIN}" in text(found)


def test_telegram_getme_and_a_wrong_token(api: BotApi) -> None:  # noqa: F811
    good = check_telegram("telegram", {"api_url": api.url}, {"token": TOKEN})
    assert levels(good) == [doctor.OK] and "@msgd_test_bot" in text(good) and "chat not found" in text(good)
    wrong = "1111111111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    bad = check_telegram("telegram", {"api_url": api.url}, {"token": wrong})
    assert levels(bad) == [doctor.PROBLEM] and "refuses the token (401" in text(bad)
    assert wrong not in text(bad) and TOKEN not in text(good)


def test_broker_down_and_database_fine(db: str, tmp_path: Path) -> None:
    from msgd.settings import Settings

    settings = Settings(broker_url=f"amqp://guest:guest@127.0.0.1:{free_port()}//", database_url=db,
                        var_dir=tmp_path)
    found = doctor.check_broker(settings)
    assert levels(found) == [doctor.PROBLEM] and "cannot connect" in text(found)
    assert levels(doctor.check_database(settings)) == [doctor.OK]


def test_the_command_checks_everything_and_fails_on_a_problem(
    pipeline: Pipeline, smtp: Any, api: BotApi,  # noqa: F811
) -> None:
    from msgd.store.models import ChannelSettings

    op = seed.operator()
    seed.sms_gateway(op, f"http://127.0.0.1:{free_port()}/send", secrets={"password": "Sms-Secret-77"})
    ChannelSettings.objects.create(operator=op, channel="email", params={
        "host": "127.0.0.1", "port": smtp.port, "security": "none"},
        secrets={"login": LOGIN, "password": PASSWORD})
    ChannelSettings.objects.create(operator=op, channel="telegram", params={"api_url": api.url},
                                   secrets={"token": TOKEN})
    result = msgd("doctor", env=pipeline.env, check=False)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "ok      broker: connected" in out and "ok      database: connected" in out
    assert "PROBLEM operator best: sms: connection refused" in out
    assert "ok      operator best: email: logged in as mailer" in out
    assert "@msgd_test_bot" in out
    assert "1 problem(s)" in out
    for secret in (PASSWORD, TOKEN, "Sms-Secret-77"):
        assert secret not in out


def test_parked_messages_are_a_warning_and_healthy_is_exit_0(pipeline: Pipeline, rabbit_url: str,
                                                             namespace: str) -> None:
    from tests.support import publish_with_pika, wait_for

    healthy = msgd("doctor", env=pipeline.env | {"MSGD_SECRET_KEY": "a-production-key-0123456789"}, check=False)
    assert healthy.returncode == 0, healthy.stdout
    assert "everything msgd needs answers" in healthy.stdout
    dev_key = msgd("doctor", env=pipeline.env, check=False)  # production broker, no secret key of its own
    assert dev_key.returncode == 0 and "WARNING web admin: MSGD_SECRET_KEY is not set" in dev_key.stdout
    pipeline.start("router")
    publish_with_pika(rabbit_url, namespace, [], raw=[b"not json"])
    out = wait_for(lambda: (r := msgd("doctor", "--no-gateways", env=pipeline.env, check=False)).returncode == 0
                   and "parked" in r.stdout and r.stdout, what="doctor to see the parked message")
    assert "WARNING broker: 1 message(s) are parked" in out and "replay" in out
