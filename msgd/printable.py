"""Text from far sides (a gateway's answer, a parked body, a header) made safe for a terminal.

Control characters (C0 except tab and newline, DEL, C1) and the Unicode line/paragraph
separators and direction overrides would garble a terminal or mislead a reader: each is shown
escaped as ``\\xNN`` / ``\\uNNNN``, so what the far side sent stays readable and nothing is lost.
"""

from __future__ import annotations

ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), *range(0x7F, 0xA0)] if chr(i) not in "\n\t"}
ESCAPES.update({i: f"\\u{i:04x}" for i in [0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]})
_ONE_LINE = {**ESCAPES, ord("\n"): "\\n", ord("\t"): "\\t"}


def printable(text: str, one_line: bool = False) -> str:
    """``text`` with every control character escaped (``"\\x00"``, ``"\\x9b"``, ``"\\u202e"``);
    ``one_line`` escapes newlines and tabs too."""
    return text.translate(_ONE_LINE if one_line else ESCAPES)
