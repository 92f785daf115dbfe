"""``msgd`` commands for staff work: the message log, resend, purge, template list, API
tokens and admin accounts. ``msgd/cli.py`` registers them (``add_commands``)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from msgd import localtime, logquery
from msgd.logview import cut, detail_rows, relative_paths, short_id, shown_recipient
from msgd.printable import printable
from msgd.settings import Settings


def count(text: str) -> int:
    """An argparse type: a whole number of at least 1 (``--limit -1`` ended in a traceback)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def _store(settings: Settings) -> None:
    from msgd import store

    store.setup(settings.effective_database_url)
    if settings.embedded:
        store.migrate()


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    try:
        return logquery.from_arguments(args)
    except logquery.BadTime as exc:
        raise SystemExit(f"msgd: {exc}") from None


# -- msgd log ---------------------------------------------------------------------------------
def log_json(m: Any) -> dict[str, Any]:
    """One row for ``msgd log --json`` (times in ISO 8601 with the configured zone's offset)."""
    return {
        "id": str(m.id), "event_id": m.event_id, "type": m.event_type, "operator": m.operator_code,
        "abonent": m.abonent_id, "channel": m.channel, "recipient": shown_recipient(m.channel, m.recipient),
        "sender": m.sender, "state": m.state, "fault": m.fault, "reason_code": m.reason_code,
        "attempts": m.attempts, "reason": m.reason,
        "subject": m.subject, "body": m.body, "gateway_message_id": m.gateway_message_id,
        "details": m.details or {}, "resend_of": str(m.resend_of_id) if m.resend_of_id else None,
        "created_at": localtime.iso(m.created_at), "finished_at": localtime.iso(m.finished_at),
    }


def cmd_log(args: argparse.Namespace, settings: Settings) -> int:
    _store(settings)
    from msgd.store.models import Message

    newest = list(logquery.select(Message.objects.all(), **_filters(args)).order_by("-created_at", "-id")[: args.limit])
    rows = newest[::-1]  # the newest ``limit``, shown oldest first (newest last), in text and JSON alike
    if args.json:
        print(json.dumps([log_json(m) for m in rows], ensure_ascii=False, indent=2))
        return 0
    tz = localtime.zone()
    for m in rows:
        who = cut(printable(shown_recipient(m.channel, m.recipient) or "-"), 22)
        reason = cut(printable(relative_paths(m.reason or "")), args.width)
        print(f"{localtime.shown(m.created_at, tz)} {short_id(m.id)} {cut(m.operator_code or '-', 10):<10} "
              f"{m.event_type:<18} {m.channel or '-':<8} {who:<22} {m.state:<11} {m.fault or '-':<19} {reason}")
        if args.details:
            for label, value in detail_rows(m.details or {}, m.gateway_message_id):
                print(f"{'':>24}{label}: {printable(value)}")
    if not rows:
        print("no messages match" if any(v is not None for v in _filters(args).values()) else "no messages yet")
    return 0


# -- msgd resend --------------------------------------------------------------------------------
def cmd_resend(args: argparse.Namespace, settings: Settings) -> int:
    _store(settings)
    from msgd.resend import ResendError, plan, resend
    from msgd.store.models import Message

    filters = _filters(args)
    if args.id:
        try:
            qs = Message.objects.filter(id__in=logquery.message_ids(Message.objects.all(), args.id))
        except LookupError as exc:
            print(f"msgd: {exc.args[0]}", file=sys.stderr)
            return 2
    elif any(v is not None for k, v in filters.items() if k != "state"):
        qs = logquery.select(Message.objects.all(), **filters)
    else:  # never every failed message ever, by accident
        print("choose the messages: --id ID, or filters besides --state, such as --since 09:00 or"
              " --operator CODE", file=sys.stderr)
        return 2
    rows = list(qs.select_related("resend_of").order_by("created_at")[: args.limit])
    if args.dry_run:
        chosen = plan(rows)
        for m in chosen.ready:
            print(f"would send again: {m.id} {m.channel} {cut(shown_recipient(m.channel, m.recipient), 40)}")
        print(chosen.summary())
        return 0
    try:
        chosen, ids = resend(settings, rows, by="msgd resend (command line)", recipient=args.to)
    except ResendError as exc:
        print(f"msgd: {exc}", file=sys.stderr)
        return 2
    for m, new_id in zip(chosen.ready, ids, strict=True):
        print(f"sent again: {m.id} -> {new_id}")
    for m, why in chosen.skipped:
        print(f"skipped {m.id}: {why}")
    print(chosen.summary().replace("to send again", "sent again", 1))
    return 0


# -- msgd purge ---------------------------------------------------------------------------------
def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    _store(settings)
    import datetime as dt

    from msgd.retention import purge

    try:
        age = logquery.parse_age(args.older_than)
    except logquery.BadTime as exc:
        raise SystemExit(f"msgd: {exc}") from None
    cutoff = dt.datetime.now(dt.UTC) - age
    done = purge(cutoff, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {done.messages} message(s), {done.attempts} attempt(s) and {done.claims} send claim(s)"
          f" created before {localtime.shown(cutoff)}; nothing else")
    return 0


# -- msgd template list ---------------------------------------------------------------------------
def cmd_template_list(args: argparse.Namespace, settings: Settings) -> int:
    _store(settings)
    from msgd.store.models import Template

    rows = list(Template.objects.select_related("owner").order_by("id"))
    if args.json:
        print(json.dumps([{"id": t.id, "name": t.name, "owner": t.owner.code if t.owner else None,
                           "event": t.event_type, "channel": t.channel or None, "enabled": t.enabled}
                          for t in rows], ensure_ascii=False, indent=2))
        return 0
    print(f"{'id':>5}  {'event':<18} {'channel':<9} {'owner':<12} {'on':<3} name")
    for t in rows:
        print(f"{t.id:>5}  {t.event_type:<18} {t.channel or 'any':<9} {t.owner.code if t.owner else 'all':<12} "
              f"{'yes' if t.enabled else 'no':<3} {t.name}")
    if not rows:
        print("no templates yet (msgd config load --preinstalled loads the shipped ones)")
    return 0


# -- msgd token ---------------------------------------------------------------------------------
def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    _store(settings)
    from msgd.web.models import ApiToken

    if args.action == "create":
        if ApiToken.objects.filter(name=args.name).exists():
            print(f"a token named {args.name!r} exists already", file=sys.stderr)
            return 2
        try:
            token, key = ApiToken.create(args.name, scopes=args.scope or ["ingest"], operators=args.operator or [])
        except ValueError as exc:
            print(f"msgd: {exc}", file=sys.stderr)
            return 2
        print(key)
        where = ", ".join(args.operator) if args.operator else "every operator"
        print(f"API token {args.name!r} created (scopes: {', '.join(token.scopes)}; {where}): send"
              " 'Authorization: Token <key>'; the key is not shown again", file=sys.stderr)
        return 0
    if args.action == "revoke":
        if not ApiToken.objects.filter(name=args.name).update(revoked=True):
            print(f"no token named {args.name!r}", file=sys.stderr)
            return 2
        print(f"token {args.name!r} revoked")
        return 0
    for t in ApiToken.objects.prefetch_related("operators"):
        used = localtime.shown(t.last_used_at) if t.last_used_at else "never"
        ops = ",".join(o.code for o in t.operators.all()) or "every operator"
        print(f"{t.name:<24} {t.prefix}…  {','.join(t.scopes) or '-':<18} {ops:<16} created"
              f" {localtime.shown(t.created_at)}  last used {used}{'  REVOKED' if t.revoked else ''}")
    return 0


# -- msgd admin ---------------------------------------------------------------------------------
def _new_password(args: argparse.Namespace) -> str:
    from django.utils.translation import gettext as _

    if args.generate:
        import secrets

        return secrets.token_urlsafe(12)
    if args.stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise SystemExit(_("msgd: no terminal to ask for the password: use --stdin or --generate"))
    first = getpass.getpass(_("new password: "))
    if first != getpass.getpass(_("again: ")):
        raise SystemExit(_("msgd: the two passwords differ; nothing changed"))
    return first


def cmd_admin(args: argparse.Namespace, settings: Settings) -> int:
    """``msgd admin``: for staff, so it speaks MSGD_LANGUAGE (else the server's locale)."""
    _store(settings)
    from django.contrib.auth import get_user_model
    from django.utils.translation import gettext as _
    from django.utils.translation import ngettext

    if args.action == "groups":
        from msgd.web.access import sync_roles

        print("\n".join(sync_roles(reset=args.reset)))
        return 0
    users = get_user_model().objects
    name = args.user or (users.filter(is_superuser=True).order_by("id").values_list("username", flat=True).first()
                         or "admin")
    user = users.filter(username=name).first()
    if user is None:
        known = ", ".join(users.order_by("username").values_list("username", flat=True)[:20]) or _("none")
        print(_("msgd: no user %(name)r (users: %(known)s)") % {"name": name, "known": known}, file=sys.stderr)
        return 2
    from axes.utils import reset

    if args.action == "unlock":
        forgotten = reset(username=name)
        print(ngettext("%(name)r unlocked (%(n)d failed login forgotten)",
                       "%(name)r unlocked (%(n)d failed logins forgotten)", forgotten) % {"name": name, "n": forgotten})
        return 0
    password = _new_password(args)
    from django.contrib.auth.password_validation import ValidationError, validate_password

    try:
        validate_password(password, user)
        if not password:
            raise ValidationError(_("the password is empty"))
    except ValidationError as exc:
        print(_("msgd: password refused: %(why)s") % {"why": " ".join(exc.messages)}, file=sys.stderr)
        return 2
    user.set_password(password)
    user.save(update_fields=["password"])
    reset(username=name)
    if args.generate:
        print(password)
    print(_("password of %(name)r changed; its login lockouts are lifted") % {"name": name}, file=sys.stderr)
    return 0


def add_commands(sub: Any, tpl_sub: Any) -> None:
    """Register the commands on ``msgd``'s subparsers (``tpl_sub``: ``msgd template``'s)."""
    lg = sub.add_parser("log", help="show the message log: the newest messages, oldest first (newest last)",
                        description="The message log, times in MSGD_TIME_ZONE (default the server's zone): the"
                                    " newest --limit messages, oldest first (newest last), in the text and the"
                                    " --json output alike. Columns: time, id (the first 8 hex digits of the"
                                    " message's id: msgd resend --id takes them), operator, event type, channel,"
                                    " recipient, state, fault class, reason (paths under the current directory"
                                    " shown relative to it).")
    logquery.add_arguments(lg)
    lg.add_argument("--limit", type=count, default=50,
                    help="at most this many of the newest messages (default 50), shown oldest first")
    lg.add_argument("--json", action="store_true",
                    help="print JSON: every field, sender and delivery details included, times with their offset;"
                         " oldest first, as the text")
    lg.add_argument("--details", action="store_true", help="also print each message's delivery details")
    lg.add_argument("--width", type=count, default=80, help="cut reasons to this many characters, ending with …")
    lg.set_defaults(func=cmd_log)

    rs = sub.add_parser("resend", help="send failed messages again (after the cause is fixed)",
                        description="Send failed (or suppressed) messages again: the same rendered text to the"
                                    " same contact (or --to), as new messages linked to the originals, each sent"
                                    " once. Choose by --id or by filters.")
    logquery.add_arguments(rs)
    rs.set_defaults(state="failed")
    rs.add_argument("--id", action="append", metavar="MESSAGE_ID",
                    help="this message: its id, or the start of it as msgd log shows it (8 hex digits) while"
                         " that names one message (repeat for more)")
    rs.add_argument("--to", metavar="CONTACT", help="the corrected phone number, e-mail or chat id (one message)")
    rs.add_argument("--limit", type=count, default=10000, help="at most this many messages (default 10000)")
    rs.add_argument("--dry-run", action="store_true", help="say what would be sent again; send nothing")
    rs.set_defaults(func=cmd_resend)

    pg = sub.add_parser("purge", help="remove old rows of the message log (retention)",
                        description="Remove messages created before the given age, with their attempts and"
                                    " send claims, and say how many; nothing else is removed.")
    pg.add_argument("--older-than", required=True, metavar="AGE", help="180d, 12w, 48h ...")
    pg.add_argument("--dry-run", action="store_true", help="count only; remove nothing")
    pg.set_defaults(func=cmd_purge)

    tl = tpl_sub.add_parser("list", help="list templates: id, event, channel, owner, enabled, name")
    tl.add_argument("--json", action="store_true", help="print JSON")
    tl.set_defaults(func=cmd_template_list)

    tok = sub.add_parser("token", help="HTTP API tokens (stored hashed; the key is printed once)")
    tok_sub = tok.add_subparsers(dest="action", required=True)
    create = tok_sub.add_parser("create", help="create a token and print its key")
    create.add_argument("name")
    create.add_argument("--scope", action="append", choices=("ingest", "read", "resend"),
                        help="ingest: publish events and manual sends (billing; the default); read: the"
                             " message log; resend: send failed messages again. Repeat for more.")
    create.add_argument("--operator", action="append", metavar="CODE",
                        help="limit the token to this operator (repeat for more; default every operator)")
    tok_sub.add_parser("revoke", help="revoke a token").add_argument("name")
    tok_sub.add_parser("list", help="list tokens with their scopes (never their keys)")
    tok.set_defaults(func=cmd_token)

    adm = sub.add_parser("admin", help="admin accounts: a lost password, a login lockout, the role groups")
    adm_sub = adm.add_subparsers(dest="action", required=True)
    pw = adm_sub.add_parser("password", help="set a user's password (default: the first superuser)")
    pw.add_argument("user", nargs="?")
    how = pw.add_mutually_exclusive_group()
    how.add_argument("--stdin", action="store_true", help="read the new password from standard input")
    how.add_argument("--generate", action="store_true", help="make a random password and print it once")
    un = adm_sub.add_parser("unlock", help="lift a user's lockout after too many failed logins")
    un.add_argument("user")
    gr = adm_sub.add_parser("groups", help="create the role groups (administrator, operator staff, helpdesk)")
    gr.add_argument("--reset", action="store_true", help="also take away permissions added to them by hand")
    adm.set_defaults(func=cmd_admin, user=None)
