"""The dummy channel: a settings model, a sender and the ChannelSpec msgd finds by entry point.

Each message is appended as one JSON line to the file ``inbox`` names; ``api_token`` stands for a
provider's credential (a secret: stored apart, masked in dumps).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field

from services.senders.base import (
    ChannelConfig,
    ChannelSender,
    Outbound,
    SendResult,
    stored_settings,
)
from services.senders.model import Problem, Secret, SettingsModel
from services.senders.spec import ChannelSpec


class DummySettings(SettingsModel):
    """Where the dummy provider's messages go."""

    inbox: str = Field(title="Inbox file", description="a file each message is appended to as a JSON line")
    api_token: Secret | None = Field(None, title="API token", description="the provider's credential")
    greeting: str = Field("", title="Greeting", description="put before every text")

    def problems(self, outbox: bool) -> Iterator[Problem]:
        if not outbox and self.api_token is None:
            yield Problem(("api_token",), "is required: the provider refuses requests without it")


class DummySender(ChannelSender):
    channel = "dummy"
    title = "Dummy"
    contact_key = "dummy"
    settings_model = DummySettings

    def deliver(self, message: Outbound, config: ChannelConfig) -> SendResult:
        s = stored_settings(DummySettings, config, self.title)
        text = f"{s.greeting} {message.body}" if s.greeting else message.body
        line = {"to": message.recipient, "text": text, "message_id": message.message_id}
        with Path(s.inbox).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        return SendResult(gateway_message_id=message.message_id, detail=f"appended to {s.inbox}")


CHANNEL = ChannelSpec(sender=DummySender)
