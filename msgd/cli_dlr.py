"""``msgd dlr``: delivery-report URLs of SMS slots (README "Delivery reports")."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from msgd.settings import Settings

_SLOT_NAME = re.compile(r"^(?P<code>[^/#\s]+)/(?P<channel>[a-z]+)#(?P<position>\d+)$")


def slot_id(given: str) -> int:
    """The id of the SMS slot ``given`` names: its numeric id, or ``operator/sms#position`` as
    ``msgd dlr list`` shows it (e.g. ``best/sms#2``). LookupError, in words, when no SMS slot has
    that id or name."""
    from msgd.store.models import ChannelSettings

    text = given.strip()
    hint = "give its id or its name (operator/sms#position) as `msgd dlr list` shows them"
    if text.isdigit():
        found = ChannelSettings.objects.filter(id=int(text)).first()
    elif (m := _SLOT_NAME.match(text)) is not None:
        found = ChannelSettings.objects.filter(operator__code=m["code"], channel=m["channel"],
                                               position=int(m["position"])).select_related("operator").first()
    else:
        raise LookupError(f"{given!r} is neither a slot id nor a slot name: {hint}")
    if found is None:
        raise LookupError(f"no slot {given!r}: {hint}")
    if found.channel != "sms":
        raise LookupError(f"{given!r} is not an SMS slot (its channel is {found.channel}): delivery-report URLs"
                          " are for SMS slots")
    return int(found.id)


def cmd_dlr(args: argparse.Namespace, settings: Settings) -> int:
    from msgd import store

    store.setup(settings.effective_database_url)
    from msgd.store.models import ChannelSettings
    from msgd.web.dlr_keys import make_url

    if args.action == "list":
        from msgd.web.models import DlrKey

        keys = {k.settings_id: k for k in DlrKey.objects.all()}
        for slot in ChannelSettings.objects.filter(channel="sms").select_related("operator"):
            key = keys.get(slot.id)
            shown = f"URL made {key.created_at:%Y-%m-%d %H:%M} UTC ({key.prefix}…)" if key else "no URL"
            print(f"{slot.id:>5}  {slot}  {shown}")
        return 0
    try:
        made = make_url(slot_id(args.slot), args.base)
    except (LookupError, ValueError) as exc:
        print(f"msgd: {str(exc.args[0]) if exc.args else exc}", file=sys.stderr)
        return 2
    print(made.url)
    if made.stored:
        print("kept as the slot's dlr_url: msgd sends it with each message; the previous URL no longer works")
    else:
        print("shown once: enter it as the delivery-report (status) URL in the gateway's account;"
              " the previous URL no longer works")
    return 0


def add_commands(sub: Any) -> None:
    dlr = sub.add_parser("dlr", help="delivery-report URLs of SMS slots (the secret is shown once)")
    dlr_sub = dlr.add_subparsers(dest="action", required=True)
    url = dlr_sub.add_parser("url", help="make a new delivery-report URL for an SMS slot (rotates the old one)")
    url.add_argument("slot", help="the slot's id or name, e.g. 42 or best/sms#2 (msgd dlr list shows both)")
    url.add_argument("--base", help="msgd's public address as the gateway reaches it (default MSGD_PUBLIC_URL)")
    dlr_sub.add_parser("list", help="SMS slots and whether they have a delivery-report URL")
    dlr.set_defaults(func=cmd_dlr)
