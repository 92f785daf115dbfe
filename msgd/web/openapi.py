"""The event schema inside docs/openapi.yaml, generated from schemas/event.v1.json.

The API validates events with schemas/event.v1.json; the OpenAPI document must state the
same constraints (a schema-driven fuzzer such as schemathesis checks that they agree), so
its ``Event*`` components are that schema converted: ``$defs`` become components named
``Event<Name>`` and the ajv-style ``errorMessage`` (msgd's own error texts) is dropped.
``python -m msgd.web.openapi`` rewrites them after the marker line; a test checks they match.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from msgd.schemas import load_schema

OPENAPI = Path(__file__).resolve().parent.parent.parent / "docs" / "openapi.yaml"
MARKER = "    # -- generated from schemas/event.v1.json by `python -m msgd.web.openapi`; do not edit below\n"


def component_name(definition: str) -> str:
    """``push_subscription`` -> ``EventPushSubscription``."""
    return "Event" + "".join(part.capitalize() for part in definition.split("_"))


def _convert(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "errorMessage":
                continue
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = "#/components/schemas/" + component_name(value.removeprefix("#/$defs/"))
            else:
                out[key] = _convert(value)
        return out
    if isinstance(node, list):
        return [_convert(item) for item in node]
    return node


def event_components() -> dict[str, Any]:
    """``Event`` and one ``Event<Name>`` per ``$defs`` entry of the event schema."""
    schema = load_schema("event")
    top = {k: v for k, v in schema.items() if k not in ("$schema", "$id", "$defs", "title")}
    out = {"Event": _convert(top)}
    out.update({component_name(name): _convert(sub) for name, sub in schema["$defs"].items()})
    return out


def generated_text() -> str:
    """The YAML that follows the marker: the components, indented under ``components.schemas``."""
    text = yaml.safe_dump(event_components(), allow_unicode=True, sort_keys=False, width=100)
    return "".join(f"    {line}" if line.strip() else line for line in text.splitlines(keepends=True))


def write(path: Path = OPENAPI) -> None:
    """Replace everything after the marker line of ``path`` with ``generated_text()``."""
    text = path.read_text(encoding="utf-8")
    head, found, _ = text.partition(MARKER)
    if not found:
        raise SystemExit(f"{path}: the marker line is missing:\n{MARKER}")
    path.write_text(head + MARKER + generated_text(), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) > 1 and sys.argv[1].startswith("-"):
        raise SystemExit(f"usage: python -m msgd.web.openapi [OPENAPI_FILE]  (default {OPENAPI})\n\n{__doc__}")
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else OPENAPI)
