"""The web push channel as msgd registers it (pyproject.toml, entry point group ``msgd.channels``)."""

from services.senders.push.doctor import probe
from services.senders.push.sender import PushSender
from services.senders.spec import ChannelSpec

CHANNEL = ChannelSpec(sender=PushSender, probe=probe)
