"""What a person reads about a message: its state, its fault class and, for a failure, the
explanation of its reason code, in the reader's language (Django's gettext; msgd/i18n.py).

The log stores codes (``failed``, ``gateway``, ``gateway.no_money``) and the far side's own
words (``reason``); this module turns the codes into words. Codes never change once released:
billing and scripts may match them (``msgd log --json``, the API)."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from msgd.envelope import (
    DELAYED,
    DELIVERED,
    FAILED,
    FAULT_CONTENT,
    FAULT_GATEWAY,
    FAULT_RECIPIENT,
    FAULT_TRANSIENT_EXHAUSTED,
    FAULT_UNKNOWN,
    FILTERED,
    NO_CONTACT,
    QUEUED,
    RETRYING,
    SENT,
    SUPPRESSED,
    UNDELIVERED,
    UNSUPPORTED,
)

# Every state of a message (msgd/envelope.py ALL_STATES) in words.
STATE_LABELS: dict[str, Promise] = {
    QUEUED: pgettext_lazy("state", "queued"),
    DELAYED: pgettext_lazy("state", "delayed (quiet hours)"),
    RETRYING: pgettext_lazy("state", "retrying"),
    SENT: pgettext_lazy("state", "sent"),
    FAILED: pgettext_lazy("state", "failed"),
    SUPPRESSED: pgettext_lazy("state", "suppressed"),
    UNSUPPORTED: pgettext_lazy("state", "unsupported channel"),
    NO_CONTACT: pgettext_lazy("state", "no contact"),
    FILTERED: pgettext_lazy("state", "filtered out"),
    DELIVERED: pgettext_lazy("state", "delivered"),
    UNDELIVERED: pgettext_lazy("state", "undelivered"),
}

# Fault classes (README "Fault classes"): whose move it is after a failure.
FAULT_LABELS: dict[str, Promise] = {
    FAULT_RECIPIENT: pgettext_lazy("fault class", "recipient"),
    FAULT_GATEWAY: pgettext_lazy("fault class", "gateway"),
    FAULT_CONTENT: pgettext_lazy("fault class", "content"),
    FAULT_TRANSIENT_EXHAUSTED: pgettext_lazy("fault class", "temporary, attempts ran out"),
    FAULT_UNKNOWN: pgettext_lazy("fault class", "unknown"),
}
FAULT_HELP = _("Whose move it is after a failure: the recipient's contact (fix it in billing), the gateway's"
               " account or a setting, the content (the template or the event), a temporary failure"
               " until the attempts ran out, or unknown.")


def state_label(state: str) -> str:
    """A state in the reader's language (the code itself for one this module does not know)."""
    label = STATE_LABELS.get(state)
    return str(label) if label is not None else state


def fault_label(fault: str) -> str:
    """A fault class in the reader's language ("" for none, the code for an unknown one)."""
    label = FAULT_LABELS.get(fault)
    return str(label) if label is not None else fault
