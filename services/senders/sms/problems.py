"""What an SMS gateway's error means: a *problem*, whether a retry may help, and its fault class.

services/senders/sms/replies.py reads each gateway's answer; this module decides what an error
in it means, first by the gateway's documented code, else by its words:

=============  =========  ===================  ============================================
problem        retried    fault class          e.g.  (each has a reason code: PROBLEMS)
=============  =========  ===================  ============================================
credentials    no         gateway              wrong login, password, API key or token
funds          no         gateway              no money on the gateway account
sender         no         gateway              sender name not approved
ip             no         gateway              this server's IP address is not allowed
request        no         gateway              the request does not fit the gateway's API
zone           no         gateway              the account does not send to that country
number         no         recipient            invalid phone number
undeliverable  no         recipient            the number cannot receive SMS
stoplist       no         recipient            the subscriber opted out (stop list)
denied         no         content              message denied (its text; smsc.ru error 6)
text           no         content              text empty or too long
unreadable     no         unknown              neither a success nor an error: outcome unknown
throttled      yes        transient-exhausted  too many requests
blocked        yes        gateway              IP temporarily blocked after repeated errors
unavailable    yes        transient-exhausted  busy, maintenance, device offline, 5xx
unclassified   yes        transient-exhausted  an error msgd has no rule for
=============  =========  ===================  ============================================

An explicit error that no code or keyword explains is ``unclassified``: a gateway that says
"error" without saying why has given no verdict on the subscriber, so the message is retried up
to the operator's attempts (a busy gateway's message then goes out), and if every attempt gets
such an answer the reason says the answer was not understood and quotes it.  The fault class
of a retried problem applies when the attempts run out.

Code tables, from each vendor's API documentation:

* smsc.ru — https://smsc.ru/api/http/send/sms/sms_answer/ (``ERROR = N``, ``error_code``):
  1 parameters, 2 login/password, 3 money, 4 IP temporarily blocked (retry in 5 min),
  5 date format, 6 message denied (text or sender name), 7 number format, 8 cannot be
  delivered to the number, 9 duplicate or too frequent requests (retry in 1 min).
* SMSPilot — the API's error list (https://smspilot.ru/apikey.php, "Ошибки"; the same codes as
  the ``smspilot`` gem's ``API_ERROR_CODES``): 10/11/12/14 request format, 100/101/106 API key
  missing/invalid/blocked, 110 system error, 113 IP restriction, 201/202 sender name,
  210 no number, 211/212 invalid number, 213 unsupported zone, 220/221 text missing/too long,
  230/231/240 request, 241 not enough credits.
* Digital Direct (https://direct.i-dgtl.ru/api/v1/message): ``error.code`` 4010/4012/4030
  bad credentials; a message item's ``code`` is an HTTP status (201 accepted, 400 invalid,
  402 money, 401/403 credentials, 429 throttled, 5xx temporary).

SemySMS, Prostor SMS and Rostelecom publish no code table for their send answers: their errors
are read by their words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from msgd.envelope import (
    FAULT_CONTENT,
    FAULT_GATEWAY,
    FAULT_RECIPIENT,
    FAULT_TRANSIENT_EXHAUSTED,
    FAULT_UNKNOWN,
)


@dataclass(frozen=True)
class Problem:
    transient: bool  # a retry may help
    fault: str  # the fault class when the message fails with it (for a retried one: when attempts run out)
    hint: str  # plain words for the reason
    code: str = ""  # the reason code (msgd/reasons.py REASONS)


PROBLEMS: dict[str, Problem] = {
    "credentials": Problem(False, FAULT_GATEWAY, "bad credentials — check the login, password or API key", "gateway.credentials"),
    "funds": Problem(False, FAULT_GATEWAY, "not enough money on the gateway account — top it up", "gateway.no_money"),
    "sender": Problem(False, FAULT_GATEWAY, "the gateway refused the sender name — have it approved in the"
                                            " gateway account or change sender_name", "gateway.sender_name"),
    "ip": Problem(False, FAULT_GATEWAY, "the gateway does not accept requests from this server's IP address"
                                        " — allow it in the gateway account", "gateway.ip_not_allowed"),
    "request": Problem(False, FAULT_GATEWAY, "the gateway refused the request — check the channel settings", "gateway.bad_request"),
    "zone": Problem(False, FAULT_GATEWAY, "the gateway account does not send to this number's country or"
                                          " network — enable it in the account or use another gateway", "gateway.zone"),
    "number": Problem(False, FAULT_RECIPIENT, "the gateway refused the phone number", "recipient.invalid_number"),
    "undeliverable": Problem(False, FAULT_RECIPIENT, "the number cannot receive this SMS", "recipient.undeliverable"),
    "stoplist": Problem(False, FAULT_RECIPIENT, "the number is on the gateway's stop list (the subscriber"
                                                " opted out)", "recipient.stop_list"),
    "denied": Problem(False, FAULT_CONTENT, "message denied by the gateway (its text or the sender name)", "content.denied"),
    "text": Problem(False, FAULT_CONTENT, "the gateway refused the text (empty, too long or not allowed)", "content.text_refused"),
    "unreadable": Problem(False, FAULT_UNKNOWN, "outcome unknown: the answer is neither a success nor an"
                                                " error msgd knows, so the message is not resent", "unknown.unparsed_answer"),
    "throttled": Problem(True, FAULT_TRANSIENT_EXHAUSTED, "the gateway is rate limiting", "transient.throttled"),
    "blocked": Problem(True, FAULT_GATEWAY, "the gateway temporarily blocked this address after repeated"
                                            " errors", "gateway.ip_blocked"),
    "unavailable": Problem(True, FAULT_TRANSIENT_EXHAUSTED, "the gateway has a temporary problem", "transient.unavailable"),
    "unclassified": Problem(True, FAULT_TRANSIENT_EXHAUSTED, "the gateway's answer was not understood"
                                                             " (an error without a known code or words)", "transient.unclassified"),
}

# code -> (problem, seconds to wait before retrying)
SMSC_CODES: dict[int, tuple[str, float | None]] = {
    1: ("request", None),
    2: ("credentials", None),
    3: ("funds", None),
    4: ("blocked", 300.0),
    5: ("request", None),
    6: ("denied", None),
    7: ("number", None),
    8: ("undeliverable", None),
    9: ("throttled", 60.0),
}
SMSPILOT_CODES: dict[int, tuple[str, float | None]] = {
    **{code: ("request", None) for code in (10, 11, 12, 14, 210, 230, 231, 240)},
    **{code: ("credentials", None) for code in (100, 101, 106)},
    110: ("unavailable", None),
    113: ("ip", None),
    201: ("sender", None),
    202: ("sender", None),
    211: ("number", None),
    212: ("number", None),
    213: ("zone", None),
    220: ("text", None),
    221: ("text", None),
    241: ("funds", None),
}
DIGITAL_DIRECT_CODES: dict[int, tuple[str, float | None]] = {
    4010: ("credentials", None), 4012: ("credentials", None), 4030: ("credentials", None),
}

_WORDS: list[tuple[str, re.Pattern[str]]] = [
    ("throttled", re.compile(
        r"too many|rate.?limit|too (often|frequent)|try (again )?later|throttl|слишком (много|част)"
        r"|повторите (запрос )?позже|превышен\w* (лимит|скорост|частот)", re.I)),
    ("unavailable", re.compile(
        r"internal|server error|unavailable|maintenance|temporar|busy|overload|offline|not online"
        r"|технич|недоступ|временн|занят|перегруж|не в сети", re.I)),
    ("ip", re.compile(r"\bip\b|ip.?address|ip-адрес", re.I)),
    ("credentials", re.compile(
        r"login|password|passwd|api.?key|token|auth|credential|unauthori[sz]ed|access denied"
        r"|логин|парол|ключ|авториз|доступ запрещ", re.I)),
    ("funds", re.compile(
        r"balance|credits?\b|money|funds|insufficient|payment required|средств|баланс|денег", re.I)),
    ("sender", re.compile(r"sender|originator|отправител|подпис", re.I)),
    ("stoplist", re.compile(r"stop.?list|black.?list|opt.?out|unsubscri|стоп.?лист|черн\w+ спис", re.I)),
    ("number", re.compile(
        r"phone|number|recipient|destination|msisdn|номер|телефон|получател", re.I)),
    ("text", re.compile(r"\btext\b|message (is )?(empty|too long)|текст", re.I)),
    ("denied", re.compile(r"denied|forbidden|prohibit|spam|запрещ|спам", re.I)),
]


def problem(name: str) -> Problem:
    """The problem named ``name`` (``unclassified`` for a name it does not know)."""
    return PROBLEMS.get(name) or PROBLEMS["unclassified"]


def classify_words(text: str) -> str:
    """A problem from an error's words (English or Russian); ``unclassified`` when none match."""
    for name, pattern in _WORDS:
        if pattern.search(text):
            return name
    return "unclassified"


def by_http_status(status: int) -> str | None:
    """A problem from an HTTP status, also where a gateway puts one inside its JSON answer
    (Digital Direct's items); None for a status that says nothing more than "error"."""
    if status == 429:
        return "throttled"
    if status >= 500 or status == 408:
        return "unavailable"
    if status in (401, 403):
        return "credentials"
    if status == 402:
        return "funds"
    return None
