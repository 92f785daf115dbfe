"""`msgd config schema` (issue 12, point 4): the JSON Schema of the configuration file, generated
from the models that check it; schemas/config.v1.json is its committed copy, examples/config.yaml
points editors at it, and the README's settings reference is generated from the same models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from msgd.config import config_schema, config_schema_text, parse_yaml
from msgd.config.reference import BEGIN, END, markdown
from services.senders.registry import channel_specs

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "schemas" / "config.v1.json"
EXAMPLE = ROOT / "examples" / "config.yaml"


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_what_the_command_prints() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == config_schema_text(), (
        "regenerate it: .venv/bin/msgd config schema > schemas/config.v1.json")


def test_the_command_prints_it(tmp_path: Path) -> None:
    from tests.support import msgd, stage_env

    out = msgd("config", "schema", env=stage_env(MSGD_VAR_DIR=str(tmp_path / "var"))).stdout
    assert json.loads(out) == config_schema()
    assert not (tmp_path / "var").exists()  # describing the file needs no store


def test_the_example_points_editors_at_it_and_is_valid() -> None:
    first = EXAMPLE.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert match, first
    assert (EXAMPLE.parent / match[1]).resolve() == COMMITTED
    for path in (EXAMPLE, ROOT / "msgd" / "data" / "templates.ru.yaml"):
        errors = [e.message for e in validator().iter_errors(parse_yaml(path.read_text(encoding="utf-8")))]
        assert errors == [], path


@pytest.mark.parametrize("doc", [
    {"operators": [{"code": "best", "name": "B", "channels": {"email": {"port": "25x"}}}]},
    {"operators": [{"code": "best", "name": "B", "channels": {"sms": {"urll": "https://x"}}}]},
    {"operators": [{"code": "best", "name": "B", "channels": {"sms": [{"strip_plus": "да"}]}}]},
    {"operators": [{"code": "best", "name": "B", "channels": {"pigeon": {}}}]},
    {"operators": [{"code": "best", "name": "B", "attempts": 0}]},
    {"operators": [{"name": "B"}]},
    {"templates": [{"event": "low_balance", "body": "x", "contract_type": "ip"}]},
    {"templates": [{"event": "low_balance"}]},
    {"colour": "red"},
])
def test_an_editor_flags_what_msgd_config_load_refuses(doc: dict[str, Any]) -> None:
    assert list(validator().iter_errors(doc)), doc


def test_every_channel_setting_is_in_the_schema_with_its_label() -> None:
    defs = config_schema()["$defs"]
    for name, spec in channel_specs().items():
        props = defs[f"{spec.settings.__name__}Slot"]["properties"]
        for field in spec.fields():
            assert props[field.name]["title"] == field.label, (name, field.name)
        assert {"outbox", "enabled", "position"} <= set(props)


def test_the_readme_documents_every_setting_of_every_channel() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert BEGIN in readme and END in readme
    block = readme[readme.index(BEGIN): readme.index(END) + len(END)]
    assert block == markdown(), "regenerate it: .venv/bin/python -m msgd.config.reference"
    for spec in channel_specs().values():
        for field in spec.settings.model_fields:
            assert f"| `{field}` |" in block, (spec.name, field)
