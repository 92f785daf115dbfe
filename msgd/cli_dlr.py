"""``msgd dlr``: delivery-report URLs of SMS slots (README "Delivery reports")."""

from __future__ import annotations

import argparse
from typing import Any

from msgd.settings import Settings


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
        made = make_url(int(args.slot), args.base)
    except (LookupError, ValueError) as exc:
        print(f"msgd: {exc} (msgd dlr list shows the SMS slots)")
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
    url.add_argument("slot", help="the slot's id (msgd dlr list)")
    url.add_argument("--base", help="msgd's public address as the gateway reaches it (default MSGD_PUBLIC_URL)")
    dlr_sub.add_parser("list", help="SMS slots and whether they have a delivery-report URL")
    dlr.set_defaults(func=cmd_dlr)
