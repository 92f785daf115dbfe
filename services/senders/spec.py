"""What a channel package hands to msgd: one :class:`ChannelSpec`, named by an entry point.

A channel is a package (msgd's own: ``services/senders/sms/``, ``email/``, ``telegram/``,
``push/``) whose ``channel.py`` defines ``CHANNEL = ChannelSpec(sender=...)`` and whose distribution
registers it in the entry point group ``msgd.channels``::

    [project.entry-points."msgd.channels"]
    whatsapp = "msgd_whatsapp.channel:CHANNEL"

The entry point's name is the channel's name (it must equal ``ChannelSpec.name``, the sender's
``channel``: lower-case letters and digits). msgd finds the spec at start
(services/senders/registry.py) and uses it everywhere: the router asks the sender class which
contact key holds the channel's addresses, the sender stage sends through it, ``msgd config
load``, ``msgd config schema`` and the web admin validate settings with its model (through
``msgd.config.settle``), and ``msgd doctor`` runs its probe.

For a settings form: :meth:`ChannelSpec.fields` lists the model's fields with their labels (the
fields' ``title``: English msgids of the manual's names, translated by the admin), help, kind,
choices, default and whether each is secret or required; ``presets`` are the ready settings a picker offers. For ``msgd doctor``: ``probe``
gets a ``ProbeRequest`` for one configured slot and returns findings (services/senders/
probe.py has the network checks); each channel keeps its probe in its package's ``doctor.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from services.senders.base import ChannelSender
from services.senders.model import SettingsModel

if TYPE_CHECKING:
    from services.senders.probe import Finding, ProbeRequest

Probe = Callable[["ProbeRequest"], "list[Finding]"]


@dataclass(frozen=True)
class Preset:
    """Ready settings for one provider (the manual's integration examples).

    ``settings`` are filled in under the operator's own keys; ``credentials`` are the settings
    the operator must still give (the model refuses the slot without them), ``optional`` the
    ones they may; ``note`` is a hint for the form."""

    name: str
    title: str
    settings: Mapping[str, Any]
    credentials: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class SettingField:
    """One setting as a form shows it: the model's field with its label and help.

    ``kind`` is ``text`` | ``bool`` | ``int`` | ``float`` | ``choice`` | ``json`` (text or a
    mapping); ``choices`` the allowed values of a ``choice``; ``secret`` settings are write-only
    (a form shows whether one is stored, never its value)."""

    name: str
    label: str
    help: str
    kind: str
    required: bool
    secret: bool
    default: Any = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChannelSpec:
    """Everything msgd needs to know about one channel.

    ``sender``: the ChannelSender subclass; it names the channel (``channel``: what templates,
    config files, queues and metrics call it, lower case), its ``title`` ("SMS"), its
    ``contact_key`` (the event's contact field) and its ``settings_model``. ``presets``: ready
    settings by name (a form offers them; the model reads ``preset:``). ``probe``: ``msgd
    doctor``'s check of one slot (services/senders/probe.py; None = the settings are checked only).
    """

    sender: type[ChannelSender]
    presets: Mapping[str, Preset] = field(default_factory=dict)
    probe: Probe | None = None

    @property
    def name(self) -> str:
        return self.sender.channel

    @property
    def title(self) -> str:
        return self.sender.title

    @property
    def contact_key(self) -> str:
        return self.sender.contact_key

    @property
    def settings(self) -> type[SettingsModel]:
        return self.sender.settings_model

    def fields(self) -> list[SettingField]:
        """The settings as form fields, the channel's own first (labels from the field titles)."""
        secrets = set(self.settings.secret_fields())
        fields = self.settings.model_fields
        return [_field(name, fields[name], name in secrets) for name in self.settings.ordered_fields()]


def _kind(annotation: Any) -> tuple[str, tuple[str, ...]]:
    """(form kind, choices) of a field's type: Literal -> choice, Optional[X] -> X's kind."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kind(get_args(annotation)[0])
    if origin is Literal:
        return "choice", tuple(str(v) for v in get_args(annotation))
    if origin in (Union, UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return _kind(members[0]) if len(members) == 1 else ("json", ())
    return {bool: "bool", int: "int", float: "float", str: "text"}.get(annotation, "json"), ()


def _field(name: str, info: FieldInfo, secret: bool) -> SettingField:
    kind, choices = ("text", ()) if secret else _kind(info.annotation)
    return SettingField(
        name=name, label=info.title or name, help=info.description or "", kind=kind,
        required=info.is_required(), secret=secret,
        default=None if info.is_required() else info.get_default(call_default_factory=True),
        choices=choices,
    )
