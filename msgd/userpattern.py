"""Regular expressions written by operators, run in time linear in the text they search.

An SMS gateway's ``success_pattern`` is matched against whatever the gateway
answers.  Python's ``re`` backtracks: a pattern such as ``(a+)+$`` takes
exponential time on a short answer, so one setting could freeze a sender.  These
patterns run on RE2 (the ``google-re2`` package; syntax:
https://github.com/google/re2/wiki/Syntax), which never backtracks; what RE2
lacks (backreferences, lookaround) is refused when the setting is loaded.
"""

from __future__ import annotations

import functools
from typing import Any

import re2


class PatternError(ValueError):
    """The pattern is not one RE2 accepts; the message says why."""


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The compiled pattern; raises ``PatternError`` (e.g. for ``(a)\\1`` or ``(?=x)``)."""
    try:
        return re2.compile(pattern)
    except re2.error as exc:
        why = exc.args[0] if exc.args else exc
        text = why.decode("utf-8", "replace") if isinstance(why, bytes) else str(why)
        raise PatternError(f"{text} (RE2 syntax: no backreferences or lookaround)") from None


def search(pattern: str, text: str) -> bool:
    """True when ``pattern`` occurs anywhere in ``text``; raises ``PatternError``."""
    return compile_pattern(pattern).search(text) is not None
