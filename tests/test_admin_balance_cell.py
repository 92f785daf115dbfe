"""The channel list's balance column when the balance query failed (msgd/web/admin_channels.py):
the problem in the reader's language, and the real words (a DNS failure says so, not "a
temporary problem") in its title."""

from __future__ import annotations

import html
import re
from typing import Any

from tests import seed
from tests.test_admin_channel_form import embedded, staff  # noqa: F401 - fixtures


def test_a_failed_query_shows_its_problem_in_russian_and_its_real_words(staff: Any) -> None:  # noqa: F811
    from django.utils import timezone, translation

    from msgd.store.models import GatewayAccount

    op = seed.operator()
    row = seed.sms_gateway(op, "https://sms.nosuch.example/send")
    words = "the name sms.nosuch.example does not resolve (DNS)"
    GatewayAccount.objects.create(settings_id=row.id, problem="unavailable", words=words, polled_at=timezone.now())
    with translation.override(None):
        page = staff.get("/admin/msgd/channelsettings/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    cell = re.search(r'<span class="msgd-balance-problem" data-problem="unavailable" title="([^"]*)">([^<]*)<', page)
    assert cell is not None, page
    title, shown = html.unescape(cell[1]), cell[2]
    assert shown == "запрос не прошёл"
    assert title.startswith(words) and "временн" not in title.lower() and "temporary" not in title
