"""The e-mail channel as msgd registers it (pyproject.toml, entry point group ``msgd.channels``)."""

from services.senders.email.doctor import probe
from services.senders.email.sender import EmailSender
from services.senders.spec import ChannelSpec

CHANNEL = ChannelSpec(sender=EmailSender, probe=probe)
