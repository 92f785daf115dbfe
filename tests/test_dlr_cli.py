"""``msgd dlr url`` takes a slot by its id or by the name ``msgd dlr list`` shows
(``best/sms#2``); an unknown or non-SMS slot is a clear error on stderr, never a Python one."""

from __future__ import annotations

from pathlib import Path

from tests import seed
from tests.support import msgd
from tests.test_staff_cli import env_for


def test_dlr_url_takes_the_id_or_the_listed_name(db: str, tmp_path: Path) -> None:
    from msgd.store.models import ChannelSettings
    from msgd.web.models import DlrKey

    op = seed.operator("best")
    first = ChannelSettings.objects.create(operator=op, channel="sms", position=1, params={"preset": "smsc"})
    second = ChannelSettings.objects.create(operator=op, channel="sms", position=2, params={"preset": "smsc"})
    ChannelSettings.objects.create(operator=op, channel="email", position=1, params={})
    env = env_for(db, tmp_path)
    listed = msgd("dlr", "list", env=env).stdout
    assert "best/sms#2  no URL" in listed, listed

    by_name = msgd("dlr", "url", "best/sms#2", "--base", "http://msgd.test", env=env).stdout
    assert by_name.startswith(f"http://msgd.test/api/v1/dlr/{second.id}/"), by_name
    assert list(DlrKey.objects.values_list("settings_id", flat=True)) == [second.id]
    by_id = msgd("dlr", "url", str(first.id), "--base", "http://msgd.test", env=env).stdout
    assert by_id.startswith(f"http://msgd.test/api/v1/dlr/{first.id}/"), by_id

    for given, words in [("best/sms#7", "no slot 'best/sms#7': give its id or its name (operator/sms#position)"),
                         ("other/sms#1", "no slot 'other/sms#1'"),
                         ("999999", "no slot '999999'"),
                         ("best/email#1", "'best/email#1' is not an SMS slot (its channel is email)"),
                         ("best sms 2", "'best sms 2' is neither a slot id nor a slot name")]:
        bad = msgd("dlr", "url", given, "--base", "http://msgd.test", env=env, check=False)
        assert bad.returncode == 2 and words in bad.stderr, (given, bad.stderr)
        assert "Traceback" not in bad.stderr and "invalid literal" not in bad.stderr and not bad.stdout
    assert DlrKey.objects.count() == 2
