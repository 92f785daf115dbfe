"""Operators, channel settings and templates as one YAML file (``msgd config load|dump|schema``).

The shell's view of the configuration: it reads the file (yamlio), checks it with the same
models everything else uses (entries: operators and templates; channels: each channel's settings
model from its package), loads it into the store in one transaction (apply), writes it back
(dump) and describes it as JSON Schema (schema). ``examples/config.yaml`` is a commented example.

Rules:

- Strict: unknown keys, channel names, time zones, quiet hours, contract types and wrongly typed
  values are refused, each with its YAML path and line
  (``operators[best].channels.sms.request_typo: unknown key, did you mean 'request_type'? ...
  (line 12)``). Every problem in the file is reported at once.
- All or nothing: any refusal (including a template the renderer cannot parse) leaves the store
  as it was.
- Idempotent: see msgd/config/apply.py.
- Secrets: a channel model's secret settings are stored in ``ChannelSettings.secrets``,
  registered with the redactor, and dumped as ``"***"`` unless ``include_secrets=True``; loading
  ``"***"`` keeps the stored secret (msgd/config/masking.py).
- YAML: ``22:00`` is read as text (not YAML 1.1's base-60 number 1320) and a key given twice in
  one mapping is an error.
"""

from msgd.config.apply import LoadReport, load_config
from msgd.config.channels import settle
from msgd.config.dump import dump_config
from msgd.config.schema import config_schema, config_schema_text
from msgd.config.yamlio import ConfigError, parse_yaml

__all__ = ["ConfigError", "LoadReport", "config_schema", "config_schema_text", "dump_config", "load_config",
           "parse_yaml", "settle"]
