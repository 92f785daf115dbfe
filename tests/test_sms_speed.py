"""Speed and control: a per-gateway rate limit shared by threads, and requests that overlap."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from services.senders.base import ChannelConfig, PermanentError
from services.senders.sms import ratelimit
from services.senders.sms.ratelimit import RateLimiter
from services.senders.sms.sender import SmsSender
from tests.test_sms_gateways import FakeGateway, make_gateway, msg, sender  # noqa: F401 - fixtures


def _send_from_threads(smssender: SmsSender, config: ChannelConfig, threads: int, each: int) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        try:
            start.wait(5)
            for i in range(each):
                smssender.send(msg(body=f"поток {n} сообщение {i}"), config)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(30)
    assert not errors, errors


def test_token_bucket_spaces_reservations() -> None:
    now = [100.0]
    bucket = RateLimiter(4.0, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]
    now[0] += 2.0  # idle: the next one goes at once, no burst is saved up
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == 0.25
    bucket.set_rate(2.0)
    assert bucket.reserve() == 0.5  # the slot already given out...
    assert bucket.reserve() == 1.0  # ...then 0.5 s apart
    with pytest.raises(ValueError, match="positive number"):
        RateLimiter(0)


def test_limiters_are_per_gateway_and_shared_in_the_process() -> None:
    a = ratelimit.limiter("http://gw-a.test/send", 10.0)
    assert ratelimit.limiter("http://gw-a.test/send", 10.0) is a
    assert ratelimit.limiter("http://gw-b.test/send", 10.0) is not a
    assert ratelimit.limiter("http://gw-a.test/send", 5.0).rate == 5.0


def test_rate_limit_holds_across_threads(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender  # noqa: F811
) -> None:
    rate, threads, each = 20.0, 4, 6
    gw = make_gateway(lambda hit: (200, "OK - 1 SMS, ID - 1", {}))
    config = ChannelConfig("sms", {"url": gw.url, "params": "to=%sms%&t=%text%", "rate_limit": rate}, {})
    _send_from_threads(sender, config, threads, each)
    arrived = sorted(h.arrived for h in gw.hits)
    assert len(arrived) == threads * each  # waited, none failed
    observed = (len(arrived) - 1) / (arrived[-1] - arrived[0])
    assert observed <= rate * 1.25, f"{observed:.1f} requests/s with a limit of {rate:g}"


def test_bad_rate_limit(sender: SmsSender) -> None:  # noqa: F811
    config = ChannelConfig("sms", {"url": "http://127.0.0.1:1/", "rate_limit": "fast"}, {})
    with pytest.raises(PermanentError, match="SMS settings cannot be used: rate_limit: must be a number, got 'fast'"):
        sender.send(msg(), config)


def test_requests_overlap_on_a_slow_gateway(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender  # noqa: F811
) -> None:
    gw = make_gateway(lambda hit: (200, "OK - 1 SMS, ID - 1", {}), latency=0.1)
    config = ChannelConfig("sms", {"url": gw.url, "params": "to=%sms%&t=%text%"}, {})
    _send_from_threads(sender, config, threads=4, each=2)
    assert len(gw.hits) == 8
    assert gw.max_in_flight >= 2  # the gateway saw several requests at once
