"""A refused setting's or template's problem in the reader's language (the admin's forms).

The words are made in English where the value is judged (services/senders/model.py and the
channels' settings models, msgd/config, the renderer's template check) and ``msgd config load``
prints them so; the common sentences are recognised here and shown translated at the point of
display. A value quoted inside a sentence ('быстро', a key, a preset's words) stays as typed; a
sentence not known here is shown as it is.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext_lazy as _

# (the sentence as written, with named groups; its text in the reader's language). A group named
# ``rest`` is itself a problem and is translated in turn.
_SENTENCES: list[tuple[re.Pattern[str], Any]] = [(re.compile(p, re.S), t) for p, t in [
    (r"is required", _("is required")),
    (r"is required: the gateway's address \(or choose a preset\)",
     _("is required: the gateway's address (or choose a preset)")),
    (r"is required by dlr_poll: the gateway's status query address",
     _("is required by dlr_poll: the gateway's status query address")),
    (r"is required by preset (?P<preset>\S+) \((?P<why>.*)\)", _("is required by preset %(preset)s (%(why)s)")),
    (r"is required by request type (?P<kind>\S+) \((?P<why>.*)\)",
     _("is required by request type %(kind)s (%(why)s)")),
    (r"must be true or false, got (?P<got>.*)", _("must be true or false, got %(got)s")),
    (r"must be a whole number, got (?P<got>.*)", _("must be a whole number, got %(got)s")),
    (r"must be a number, got (?P<got>.*)", _("must be a number, got %(got)s")),
    (r"must be more than (?P<limit>\S+), got (?P<got>.*)", _("must be more than %(limit)s, got %(got)s")),
    (r"must be at least (?P<limit>\S+), got (?P<got>.*)", _("must be at least %(limit)s, got %(got)s")),
    (r"must be less than (?P<limit>\S+), got (?P<got>.*)", _("must be less than %(limit)s, got %(got)s")),
    (r"must be at most (?P<limit>\S+), got (?P<got>.*)", _("must be at most %(limit)s, got %(got)s")),
    (r"must be text, got (?P<got>.*)", _("must be text, got %(got)s")),
    (r"must be a port number 1\.\.65535, got (?P<got>.*)", _("must be a port number 1..65535, got %(got)s")),
    (r"(?P<got>.*) is not one of (?P<choices>.*)", _("%(got)s is not one of %(choices)s")),
    (r"unknown key, did you mean (?P<near>'[^']*')\? \(known: (?P<known>.*)\)",
     _("unknown key, did you mean %(near)s? (known: %(known)s)")),
    (r"unknown key \(known: (?P<known>.*)\)", _("unknown key (known: %(known)s)")),
    (r"(?P<address>'[^']*') is not a valid http\(s\) URL: it must start with http:// or https:// and a host",
     _("%(address)s is not a valid http(s) URL: it must start with http:// or https:// and a host")),
    (r"is not a valid http\(s\) URL: it must start with http:// or https:// and a host",
     _("is not a valid http(s) URL: it must start with http:// or https:// and a host")),
    # the template check (services/renderer/standard.py)
    (r"line (?P<line>\d+), column (?P<column>\d+): (?P<rest>.*)", _("line %(line)s, column %(column)s: %(rest)s")),
    (r'a lone "%": write "%%" for a percent sign', _('a lone "%%": write "%%%%" for a percent sign')),
    (r"variable (?P<name>'[^']*') is not in the event \(did you mean (?P<near>'[^']*')\?\)",
     _("variable %(name)s is not in the event (did you mean %(near)s?)")),
    (r"variable (?P<name>'[^']*') is not in the event", _("variable %(name)s is not in the event")),
]]
_KEYED = re.compile(r"(?P<key>[\w.\[\]-]+): (?P<rest>.*)", re.S)


def shown_problem(text: str) -> str:
    """``text`` (a problem, or ``key: problem``; several joined by "; or ") in the reader's
    language where known, else as it is."""
    return f"; {_('or')} ".join(_one(part) for part in text.split("; or "))


def _one(text: str) -> str:
    for pattern, words in _SENTENCES:
        found = pattern.fullmatch(text)
        if found:
            groups = found.groupdict()
            if "rest" in groups:
                groups["rest"] = _one(groups["rest"])
            return str(words) % groups
    keyed = _KEYED.fullmatch(text)
    if keyed and keyed["rest"] != text:
        return f"{keyed['key']}: {_one(keyed['rest'])}"
    return text
