"""The Telegram channel as msgd registers it (pyproject.toml, entry point group ``msgd.channels``)."""

from services.senders.spec import ChannelSpec
from services.senders.telegram.doctor import probe
from services.senders.telegram.sender import TelegramSender

CHANNEL = ChannelSpec(sender=TelegramSender, probe=probe)
