"""Resend: failed messages sent again once the cause is fixed (an empty gateway account
topped up, a wrong setting corrected), from the admin, ``msgd resend`` and the API.

A resend is a new message with the same rendered text (subject, body, HTML part, sender)
to the same contact or a corrected one. It gets its own message id, so the sender claims
it like any send (services/senders/claims.py) and it goes out once; the id is
uuid5(original, resend number), and the original's row is locked while its resend is
made, so a second click finds the first resend and makes none. The log keeps both rows:
the new one points to the original (``Message.resend_of``, always the first message of
the chain) and its history starts with who asked for it. The new row is written and the
outbound message published with publisher confirms in one database transaction: if the
broker does not confirm, nothing is recorded and the error is raised.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from msgd.envelope import FAILED, NAMESPACE, SUPPRESSED, dumps
from msgd.settings import Settings
from msgd.topology import Lane

log = structlog.get_logger("msgd.resend")

# Final states that mean "not sent" and have a rendered message to send again.
RESENDABLE = (FAILED, SUPPRESSED)


class ResendError(ValueError):
    """A resend that cannot be asked for as it is (a corrected contact for many messages, ...)."""


@dataclass
class Plan:
    """What a resend of some messages would do: ``ready`` are sent again, ``skipped`` are
    (message, reason in plain words)."""

    ready: list[Any] = field(default_factory=list)
    skipped: list[tuple[Any, str]] = field(default_factory=list)

    def summary(self) -> str:
        """``2 to send again; 1 skipped: …`` (reasons counted)."""
        counts: dict[str, int] = {}
        for _m, why in self.skipped:
            counts[why] = counts.get(why, 0) + 1
        why = "; ".join(f"{n} × {reason}" if n > 1 else reason for reason, n in counts.items())
        return f"{len(self.ready)} to send again" + (f"; {len(self.skipped)} skipped: {why}" if why else "")


def resend_id(original_id: Any, number: int) -> str:
    """The id of resend ``number`` (1, 2, ...) of ``original_id``: the same request twice gives
    the same id, so the sender's claim lets it out once."""
    return str(uuid.uuid5(NAMESPACE, f"resend|{original_id}|{number}"))


def _root(m: Any) -> Any:
    return m.resend_of if m.resend_of_id else m


def why_not(m: Any, chain: list[Any]) -> str | None:
    """Why ``m`` cannot be sent again (None: it can). ``chain``: its original and every resend."""
    from django.utils.translation import gettext as _

    from msgd.reasons import state_label
    from services.senders.registry import live_channels

    if m.state not in RESENDABLE:
        return str(_("it is %(state)s: only failed or suppressed messages are sent again")
                   % {"state": state_label(m.state)})
    if not (m.body or m.html):
        return str(_("it was never rendered: fix the template, then have billing send the event again"))
    if m.channel not in live_channels():
        return str(_("msgd cannot send on channel %(channel)r") % {"channel": m.channel})
    pending = [r for r in chain if r.state not in RESENDABLE]
    if pending:
        return str(_("it was sent again already (that one is %(state)s)") % {"state": state_label(pending[-1].state)})
    return None


def plan(messages: Iterable[Any]) -> Plan:
    """Decide for each message (Message rows) whether it is sent again; one resend per chain."""
    from django.utils.translation import gettext

    from msgd.store.models import Message

    out = Plan()
    seen: set[Any] = set()
    rows = list(messages)
    roots = {_root(m).id for m in rows}
    chains: dict[Any, list[Any]] = {r: [] for r in roots}
    for m in Message.objects.filter(resend_of_id__in=roots).order_by("created_at"):
        chains[m.resend_of_id].append(m)
    for m in rows:
        root = _root(m)
        if root.id in seen:
            out.skipped.append((m, gettext("another message of the same chain is sent again")))
            continue
        chain = [root, *chains.get(root.id, [])]
        reason = why_not(m, chain)
        if reason:
            out.skipped.append((m, reason))
            continue
        seen.add(root.id)
        out.ready.append(m)
    return out


def check_recipient(m: Any, recipient: str) -> str:
    """A corrected contact for ``m``'s channel, stripped; ResendError saying what is wrong."""
    from django.utils.translation import gettext as _

    from msgd import storable
    from services.senders.email.address import recipient_problem

    value = recipient.strip()
    if not value or len(value) > 500 or storable.problem(value) is not None:
        raise ResendError(_("the corrected contact must be 1 to 500 characters of text"))
    if m.channel == "push":
        raise ResendError(_("a push subscription comes from the subscriber's browser: it cannot be typed in"))
    if m.channel == "email" and recipient_problem(value):  # as the e-mail sender checks it
        raise ResendError(_("%(value)r is not an e-mail address") % {"value": value})
    return value


def resend(settings: Settings, messages: Iterable[Any], *, by: str, recipient: str | None = None) -> tuple[Plan, list[str]]:
    """Send ``messages`` again (those the plan allows); returns the plan and the new message ids.

    ``by`` names who asked (a user, a token, the command line) in the new row's history;
    ``recipient`` corrects the contact of a single message. Raises ResendError for a bad
    request and the broker's error (PublishError, OSError) when it does not confirm: then
    nothing was recorded."""
    from django.db import transaction

    from msgd.store.models import Message

    rows = list(messages)
    if recipient is not None and len(rows) != 1:
        raise ResendError("a corrected contact is for one message at a time")
    with transaction.atomic():
        # Lock the originals: a second request for the same chain waits here, then finds the
        # first one's resend and skips.
        roots = {_root(m).id for m in rows}
        list(Message.objects.select_for_update().filter(id__in=roots).values_list("id", flat=True))
        fresh = list(Message.objects.filter(id__in=[m.id for m in rows]).select_related("resend_of"))
        chosen = plan(fresh)
        to = check_recipient(chosen.ready[0], recipient) if recipient is not None and chosen.ready else None
        outgoing, ids = _create(chosen.ready, by, to)
        if outgoing:
            from msgd.publishing import publish

            publish(settings, outgoing, declare_once=True)
    for new_id, m in zip(ids, chosen.ready, strict=True):
        log.info("message sent again", message_id=new_id, original=str(m.id), by=by, channel=m.channel,
                 operator=m.operator_code)
    return chosen, ids


def _create(ready: list[Any], by: str, recipient: str | None) -> tuple[list[Any], list[str]]:
    """The new log rows (queued, history "sent again by …") and their outbound messages."""
    from django.utils import timezone

    from msgd import topology as topo
    from msgd.broker import Outgoing
    from msgd.store.models import Attempt, Message
    from services.senders.base import Outbound

    now = timezone.now()
    outgoing, ids = [], []
    for m in ready:
        root = _root(m)
        number = Message.objects.filter(resend_of_id=root.id).count() + 1
        new_id = resend_id(root.id, number)
        to = recipient or m.recipient
        lane: Lane = "tx" if m.lane == "tx" else "bulk"
        row = Message.objects.create(
            id=new_id, event_id=m.event_id, event_type=m.event_type, operator_code=m.operator_code,
            abonent_id=m.abonent_id, abonent_name=m.abonent_name, template_id=m.template_id,
            channel=m.channel, recipient=to, sender=m.sender, subject=m.subject, body=m.body,
            html=m.html, lane=lane, state="queued", reason="", created_at=now, updated_at=now,
            resend_of_id=root.id)
        note = f"sent again by {by}: resend {number} of message {root.id}" + (
            f", to the corrected contact (was {m.recipient})" if recipient and m.channel != "push" else "")
        Attempt.objects.create(message=row, number=0, state="queued", reason=note[:2000], at=now)
        wire = Outbound(
            message_id=new_id, event_id=m.event_id, event_type=m.event_type, operator_code=m.operator_code,
            channel=m.channel, recipient=to, body=m.body, subject=m.subject, sender=m.sender,
            html=m.html or None, lane=lane, template_id=m.template_id, abonent_id=m.abonent_id,
            abonent_name=m.abonent_name, created_at=now.isoformat()).to_wire()
        outgoing.append(Outgoing(route=topo.send_route(m.channel, lane), body=dumps(wire)))
        ids.append(new_id)
    return outgoing, ids
