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


# -- reason codes ------------------------------------------------------------------------------------
# A failure's stable code beside the far side's own words (``reason``): ``<class>.<name>``, the
# class being whose move it is (as the fault class; ``transient`` for a temporary failure). The
# admin explains the code in the reader's language; billing and scripts match the code.
REASONS: dict[str, Promise] = {
    # the gateway's account or a channel setting: the operator fixes it
    "gateway.credentials": _("The gateway refused the login, password, API key or token: check them in the"
                             " channel settings."),
    "gateway.no_money": _("Not enough money on the gateway account: top it up, then send the failed messages"
                          " again."),
    "gateway.sender_name": _("The gateway refused the sender name: have it approved in the gateway account or"
                             " change it in the channel settings."),
    "gateway.ip_not_allowed": _("The gateway does not accept requests from this server's IP address: allow it"
                                " in the gateway account."),
    "gateway.ip_blocked": _("The gateway blocked this server for a while after repeated errors."),
    "gateway.bad_request": _("The gateway refused the request: it does not fit the gateway's API. Check the"
                             " channel settings (address, request type, parameters)."),
    "gateway.zone": _("The gateway account does not send to this country or network: enable it in the account"
                      " or use another gateway."),
    "gateway.bad_setting": _("A channel setting cannot be used as it is (an address, a proxy, a header):"
                             " check the channel settings."),
    "gateway.tls": _("The secure connection (TLS) to the gateway failed: its certificate or the security"
                     " setting."),
    "gateway.not_configured": _("The operator has no channel settings for this channel: add them."),
    "gateway.outbox": _("The message could not be written to the outbox directory: check its free space and"
                        " permissions."),
    "gateway.refused": _("The gateway or server refused the message for a reason of its own account or"
                         " settings: read its words."),
    # the subscriber's contact: fixed in billing
    "recipient.invalid_number": _("The phone number is not valid: correct it in the subscriber's card in"
                                  " billing."),
    "recipient.invalid_contact": _("The subscriber's contact is malformed (an e-mail address, a number, a chat"
                                   " id): correct it in billing."),
    "recipient.undeliverable": _("The number cannot receive this SMS."),
    "recipient.stop_list": _("The subscriber opted out: the number is on the gateway's stop list."),
    "recipient.refused": _("The far side refused the recipient (no such address or user, the subscriber"
                           " blocked the bot, the push subscription is gone)."),
    "recipient.undelivered": _("The message was sent, but the delivery report says it did not reach the"
                               " subscriber."),
    # the message itself
    "content.denied": _("The gateway denied the message for its text or the sender name."),
    "content.text_refused": _("The gateway refused the text: empty, too long or not allowed."),
    "content.too_large": _("The message is too large for the channel (too many SMS parts, too large an"
                           " e-mail): shorten the template."),
    "content.render_error": _("The template could not be rendered with this event: fix the template (the"
                              " preview shows why)."),
    "content.refused": _("The message itself cannot go out as it is: see the template and the event data."),
    # temporary failures, until the attempts ran out
    "transient.timeout": _("The gateway or server did not answer in time."),
    "transient.connection_refused": _("The gateway or server refused the connection (is it running? a"
                                      " firewall?)."),
    "transient.dns": _("The host name of the gateway or server could not be resolved (DNS)."),
    "transient.network": _("The network connection to the gateway or server failed."),
    "transient.proxy": _("The proxy could not be reached or refused the connection."),
    "transient.throttled": _("The gateway is limiting the request rate (too many requests)."),
    "transient.unavailable": _("The gateway or server has a temporary problem (busy, maintenance, error"
                               " 5xx)."),
    "transient.unclassified": _("The gateway answered with an error msgd has no rule for; it was tried again"
                                " until the attempts ran out."),
    "transient.failure": _("A temporary failure, until the attempts ran out."),
    # nobody can tell
    "unknown.unparsed_answer": _("The gateway's answer is neither a success nor an error msgd knows: the"
                                 " message may have been sent, so it is not sent again."),
    "unknown.maybe_delivered": _("The request reached the gateway or server but no answer came back: the"
                                 " message may have been delivered."),
    "unknown.outcome": _("Whether the message went out is unknown (the sender stopped during the send): it is"
                         " not sent again on its own."),
    "unknown.sender_bug": _("msgd's sender failed on this message in an unexpected way (its log has the"
                            " details)."),
    "unknown.failure": _("The failure has no explanation: read the far side's words."),
}

# The code of a failure that names none: by its fault class (every failure has a code).
DEFAULT_BY_FAULT: dict[str, str] = {
    FAULT_RECIPIENT: "recipient.refused",
    FAULT_GATEWAY: "gateway.refused",
    FAULT_CONTENT: "content.refused",
    FAULT_TRANSIENT_EXHAUSTED: "transient.failure",
    FAULT_UNKNOWN: "unknown.failure",
}


def code_for(code: str, fault: str) -> str:
    """The code to record for a failure: ``code`` when msgd knows it, else the fault class's."""
    return code if code in REASONS else DEFAULT_BY_FAULT.get(fault, "unknown.failure")


# A test message's contact was typed by staff in the test message form, not taken from billing.
TYPED_CONTACT = ("test_message",)
_TYPED = {
    "recipient.invalid_number": _("The phone number is not valid: correct it in the test message form."),
    "recipient.invalid_contact": _("The contact is malformed (an e-mail address, a number, a chat id): correct it"
                                   " in the test message form."),
}


def explain(code: str, event_type: str = "") -> str:
    """A reason code's explanation in the reader's language ("" for no code or an unknown one);
    for a message of ``event_type`` whose contact staff typed (TYPED_CONTACT), the form is where
    a bad contact is corrected, not billing."""
    text = _TYPED.get(code) if event_type in TYPED_CONTACT else None
    text = text if text is not None else REASONS.get(code)
    return str(text) if text is not None else ""
