"""The SMS channel as msgd registers it (pyproject.toml, entry point group ``msgd.channels``)."""

from services.senders.sms.doctor import probe
from services.senders.sms.presets import PRESETS
from services.senders.sms.sender import SmsSender
from services.senders.spec import ChannelSpec

CHANNEL = ChannelSpec(sender=SmsSender, presets=PRESETS, probe=probe)
