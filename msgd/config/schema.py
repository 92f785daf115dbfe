"""``msgd config schema``: the JSON Schema (draft 2020-12) of the configuration file.

Generated from the same models that check a file (the operator and template models, and every
installed channel's settings model), so editors complete and check exactly what ``msgd config
load`` accepts. ``schemas/config.v1.json`` is this output for msgd's own channels (a test keeps
it in sync); ``examples/config.yaml`` points the YAML language server at it. The schema lists
canonical spellings (``sms``, ``post``); msgd also reads the manual's ("SMS", "POST").
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from msgd.config.channels import SlotKeys
from msgd.config.entries import FORMAT_VERSION, OperatorEntry, TemplateEntry
from services.senders.registry import channel_specs

SCHEMA_ID = "https://msgd.example/schemas/config.v1.json"


def _file_model() -> type[BaseModel]:
    slots: dict[str, Any] = {}
    for name, spec in channel_specs().items():
        slot = create_model(f"{spec.settings.__name__}Slot", __base__=(spec.settings, SlotKeys),
                            __doc__=f"{spec.title}: {spec.settings.__doc__ or ''}".strip())
        slots[name] = (slot | list[slot] | None, Field(None, title=spec.title))  # type: ignore[valid-type]
    channels = create_model("Channels", __config__=ConfigDict(extra="forbid"),
                            __doc__="The operator's channel slots: settings, or a list of them (main gateway,"
                                    " then fallbacks)", **slots)
    operator = create_model("Operator", __base__=OperatorEntry,
                            channels=(channels | None, Field(None, title="Каналы",
                                      description=OperatorEntry.model_fields["channels"].description)))
    return create_model(
        "ConfigFile", __config__=ConfigDict(extra="forbid", title="msgd configuration"),
        version=(Literal[1], Field(FORMAT_VERSION, description="the format's version")),
        operators=(list[operator], Field(default_factory=list,  # type: ignore[valid-type]
                                         description="matched by code")),
        templates=(list[TemplateEntry], Field(default_factory=list,
                                              description="matched by owner, event, channel and name")),
    )


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration file (operators, channels, templates)."""
    schema = _file_model().model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "description": "msgd's operators, channel settings and templates (msgd config load / dump)", **schema}


def config_schema_text() -> str:
    return json.dumps(config_schema(), ensure_ascii=False, indent=2) + "\n"
