"""Every problem of a configuration file at once, each with its YAML path and line.

A place is shown as the file's path with list items named where that helps: operators by code,
templates by name (``operators[best].channels.sms[1].url``, ``templates[Низкий баланс].body``),
followed by the line (``(line 12)``) when the file had one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from msgd.config.yamlio import Marks, Path_


@dataclass
class Problems:
    """Problems collected while checking one file; ``errors()`` in the file's order."""

    marks: Marks = field(default_factory=dict)
    labels: dict[Path_, str] = field(default_factory=dict)
    _found: list[tuple[float, int, str]] = field(default_factory=list)

    def name(self, path: Path_, label: str) -> None:
        """Show the list item at ``path`` as ``[label]`` rather than its index."""
        if label and not any(c in label for c in "[]\n"):
            self.labels[path] = label

    def line(self, path: Path_) -> int | None:
        """The line of ``path``, else of its nearest ancestor the file has."""
        for end in range(len(path), 0, -1):
            found = self.marks.get(path[:end])
            if found is not None:
                return found
        return None

    def place(self, path: Path_) -> str:
        out = ""
        for i, step in enumerate(path):
            if isinstance(step, int):
                out += f"[{self.labels.get(path[: i + 1], step)}]"
            else:
                out += f".{step}" if out else str(step)
        return out or "(file)"

    def add(self, path: Path_, message: str) -> None:
        line = self.line(path)
        text = f"{self.place(path)}: {message}" + (f" (line {line})" if line is not None else "")
        self._found.append((line if line is not None else math.inf, len(self._found), text))

    def errors(self) -> list[str]:
        return [text for _, _, text in sorted(self._found)]

    def __bool__(self) -> bool:
        return bool(self._found)
