"""A refused setting's or template's problem in the reader's language (the admin's forms).

The words are made in English where the value is judged (services/senders/model.py and the
channels' settings models, msgd/config, the renderer's template check) and ``msgd config load``
prints them so; the common sentences are recognised here and shown translated at the point of
display. A value quoted inside a sentence ('быстро', a key, a preset's words) stays as typed; a
sentence not known here is shown as it is.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext_lazy as _

# (the sentence as written, with named groups; its text in the reader's language). A group named
# ``rest`` is itself a problem and is translated in turn.
_SENTENCES: list[tuple[re.Pattern[str], Any]] = [(re.compile(p, re.S), t) for p, t in [
    # the channels' settings models (services/senders/*/settings.py): before the general sentences below
    ("(?P<address>'[^']*') is not a valid http\\(s\\) URL: it holds a space or a control character \\(write a space as %20\\)",
     _('%(address)s is not a valid http(s) URL: it holds a space or a control character (write a space as %%20)')),
    ("(?P<address>'[^']*') is not a valid http\\(s\\) URL: its port must be a number 1\\.\\.65535",
     _('%(address)s is not a valid http(s) URL: its port must be a number 1..65535')),
    ('(?P<address>\'[^\']*\') is not a valid http\\(s\\) URL: its host is not a host name \\(letters, digits, \\"-\\" and dots\\)',
     _('%(address)s is not a valid http(s) URL: its host is not a host name (letters, digits, "-" and dots)')),
    ("(?P<host>'.*') is not a host name: write the server's name alone, such as smtp\\.example\\.ru \\(no http://, no port: the port has its own setting\\)",
     _("%(host)s is not a host name: write the server's name alone, such as smtp.example.ru (no http://, no port: the port has its own setting)")),
    ("(?P<got>'.*') is not a region code such as RU, KZ, BY \\(ISO 3166-1 alpha-2\\)",
     _('%(got)s is not a region code such as RU, KZ, BY (ISO 3166-1 alpha-2)')),
    ("region (?P<got>'.*') is not a known ISO 3166 country code \\(e\\.g\\. RU, KZ, BY\\)",
     _('region %(got)s is not a known ISO 3166 country code (e.g. RU, KZ, BY)')),
    ("(?P<got>'.*') is not a regular expression msgd can run: (?P<why>.*)",
     _('%(got)s is not a regular expression msgd can run: %(why)s')),
    ("request type (?P<got>'[^']*') is not one of (?P<choices>.*)",
     _('request type %(got)s is not one of %(choices)s')),
    ("unknown SMS preset (?P<got>'.*') \\(known: (?P<known>.*)\\)",
     _('unknown SMS preset %(got)s (known: %(known)s)')),
    ("msgd can ask only (?P<formats>.*) for delivery reports \\(this gateway's format is (?P<fmt>\\S+)\\); a gateway that calls back needs no polling: msgd dlr url SLOT",
     _("msgd can ask only %(formats)s for delivery reports (this gateway's format is %(fmt)s); a gateway that calls back needs no polling: msgd dlr url SLOT")),
    ("needs %message_id% in params \\(the gateway's client message id parameter, e\\.g\\. id=%message_id%\\); the JSON request types cannot carry it",
     _("needs %%message_id%% in params (the gateway's client message id parameter, e.g. id=%%message_id%%); the JSON request types cannot carry it")),
    ('must be utf-8 for request type (?P<kind>\\S+) \\(JSON is UTF-8\\)',
     _('must be utf-8 for request type %(kind)s (JSON is UTF-8)')),
    ('must be a JSON object such as \\{"ttl": 3600\\} for Digital Direct JSON',
     _('must be a JSON object such as {"ttl": 3600} for Digital Direct JSON')),
    ('must be text for request type (?P<kind>\\S+) \\(a parameter string\\)',
     _('must be text for request type %(kind)s (a parameter string)')),
    ("'tls' is ambiguous: say ssl \\(implicit TLS, usually port 465\\) or starttls \\(port 587\\)",
     _("'tls' is ambiguous: say ssl (implicit TLS, usually port 465) or starttls (port 587)")),
    ('is required with a login \\(the server would refuse an empty password\\)',
     _('is required with a login (the server would refuse an empty password)')),
    ('has spaces or slashes in it — paste it as @BotFather gave it',
     _('has spaces or slashes in it — paste it as @BotFather gave it')),
    ('is required: the bot token from @BotFather',
     _('is required: the bot token from @BotFather')),
    ('(?P<where>\\S+) is not a proxy URL: write it with its scheme, http://host:port or socks5h://host:port',
     _('%(where)s is not a proxy URL: write it with its scheme, http://host:port or socks5h://host:port')),
    ('is not a proxy URL: write it with its scheme, http://host:port or socks5h://host:port',
     _('is not a proxy URL: write it with its scheme, http://host:port or socks5h://host:port')),
    ("is required: the key browsers' subscriptions are signed with",
     _("is required: the key browsers' subscriptions are signed with")),
    ('is required: mailto:admin@your\\.domain or an https:// URL',
     _('is required: mailto:admin@your.domain or an https:// URL')),
    ("(?P<got>'.*') must be mailto:admin@your\\.domain or an https:// URL",
     _('%(got)s must be mailto:admin@your.domain or an https:// URL')),
    ("is not a VAPID key: use the PEM file's text, or the base64url private key \\(32 bytes\\) that web-push generate-vapid-keys prints",
     _("is not a VAPID key: use the PEM file's text, or the base64url private key (32 bytes) that web-push generate-vapid-keys prints")),
    ('is encrypted with a passphrase: store it unencrypted',
     _('is encrypted with a passphrase: store it unencrypted')),
    ('must be an EC key on the P-256 \\(prime256v1\\) curve',
     _('must be an EC key on the P-256 (prime256v1) curve')),
    ('does not belong to vapid_private_key — browsers subscribed with the public key, so both must come from one key pair',
     _('does not belong to vapid_private_key — browsers subscribed with the public key, so both must come from one key pair')),
    ("(?P<got>'.*') is not one of HTML, MarkdownV2, Markdown \\(or empty for plain text\\)",
     _('%(got)s is not one of HTML, MarkdownV2, Markdown (or empty for plain text)')),
    (r"is required", _("is required")),
    (r"is required: the gateway's address \(or choose a preset\)",
     _("is required: the gateway's address (or choose a preset)")),
    (r"is required by dlr_poll: the gateway's status query address",
     _("is required by dlr_poll: the gateway's status query address")),
    (r"is required by preset (?P<preset>\S+) \((?P<why>.*)\)", _("is required by preset %(preset)s (%(why)s)")),
    (r"is required by request type (?P<kind>\S+) \((?P<why>.*)\)",
     _("is required by request type %(kind)s (%(why)s)")),
    (r"must be true or false, got (?P<got>.*)", _("must be true or false, got %(got)s")),
    (r"must be a whole number, got (?P<got>.*)", _("must be a whole number, got %(got)s")),
    (r"must be a number, got (?P<got>.*)", _("must be a number, got %(got)s")),
    (r"must be more than (?P<limit>\S+), got (?P<got>.*)", _("must be more than %(limit)s, got %(got)s")),
    (r"must be at least (?P<limit>\S+), got (?P<got>.*)", _("must be at least %(limit)s, got %(got)s")),
    (r"must be less than (?P<limit>\S+), got (?P<got>.*)", _("must be less than %(limit)s, got %(got)s")),
    (r"must be at most (?P<limit>\S+), got (?P<got>.*)", _("must be at most %(limit)s, got %(got)s")),
    (r"must be text, got (?P<got>.*)", _("must be text, got %(got)s")),
    (r"must be a port number 1\.\.65535, got (?P<got>.*)", _("must be a port number 1..65535, got %(got)s")),
    (r"(?P<got>.*) is not one of (?P<choices>.*)", _("%(got)s is not one of %(choices)s")),
    (r"unknown key, did you mean (?P<near>'[^']*')\? \(known: (?P<known>.*)\)",
     _("unknown key, did you mean %(near)s? (known: %(known)s)")),
    (r"unknown key \(known: (?P<known>.*)\)", _("unknown key (known: %(known)s)")),
    (r"(?P<address>'[^']*') is not a valid http\(s\) URL: it must start with http:// or https:// and a host",
     _("%(address)s is not a valid http(s) URL: it must start with http:// or https:// and a host")),
    (r"is not a valid http\(s\) URL: it must start with http:// or https:// and a host",
     _("is not a valid http(s) URL: it must start with http:// or https:// and a host")),
    # an e-mail address (services/senders/email/address.py and email-validator's reasons)
    (r"invalid sender e-mail address (?P<address>'.*'): (?P<rest>.*)",
     _("invalid sender e-mail address %(address)s: %(rest)s")),
    (r"invalid e-mail address (?P<address>'.*'): (?P<rest>.*)", _("invalid e-mail address %(address)s: %(rest)s")),
    (r"an email address must have an @-sign", _("an email address must have an @-sign")),
    (r"there must be something before the @-sign", _("there must be something before the @-sign")),
    (r"there must be something after the @-sign", _("there must be something after the @-sign")),
    (r"an email address cannot have two periods in a row", _("an email address cannot have two periods in a row")),
    (r"an email address cannot start with a period", _("an email address cannot start with a period")),
    (r"an email address cannot end with a period", _("an email address cannot end with a period")),
    (r"an email address cannot have a period immediately before the @-sign",
     _("an email address cannot have a period immediately before the @-sign")),
    (r"an email address cannot have a hyphen immediately after the @-sign",
     _("an email address cannot have a hyphen immediately after the @-sign")),
    (r"the email address contains invalid characters before the @-sign: (?P<chars>.*)",
     _("the email address contains invalid characters before the @-sign: %(chars)s")),
    (r"the part after the @-sign contains invalid characters: (?P<chars>.*)",
     _("the part after the @-sign contains invalid characters: %(chars)s")),
    (r"the part after the @-sign is not valid\. It should have a period",
     _("the part after the @-sign is not valid. It should have a period")),
    (r"the part after the @-sign is a special-use or reserved name that cannot be used with email",
     _("the part after the @-sign is a special-use or reserved name that cannot be used with email")),
    (r"a bracketed IP address after the @-sign is not allowed here",
     _("a bracketed IP address after the @-sign is not allowed here")),
    (r"after the @-sign, periods cannot be separated by so many characters \((?P<n>\d+) characters too many\)",
     _("after the @-sign, periods cannot be separated by so many characters (%(n)s characters too many)")),
    # what needs a missing setting (services/senders/sms/request.py missing_settings)
    (r"%(?P<name>\w+)% in params: (?P<needs>.*)", _("%%%(name)s%% in params: %(needs)s")),
    (r"the Rostelecom JSON request", _("the Rostelecom JSON request")),
    (r"the Digital Direct JSON request: the sender name agreed with Digital Direct",
     _("the Digital Direct JSON request: the sender name agreed with Digital Direct")),
    (r"the Digital Direct JSON request: the API key from the Digital Direct account, or api_key",
     _("the Digital Direct JSON request: the API key from the Digital Direct account, or api_key")),
    # the manual send's refusals (msgd/web/api.py build_manual_event), shown in the admin's form
    ('choose a template, or set all_templates: true to send every matching template',
     _('choose a template, or set all_templates: true to send every matching template')),
    ('choose a template or all matching templates, not both',
     _('choose a template or all matching templates, not both')),
    ('required when every matching template is sent \\(their %\\(text\\)s\\); or choose a template',
     _('required when every matching template is sent (their %%(text)s); or choose a template')),
    ('required: the chosen template shows it \\(%\\(text\\)s\\)',
     _('required: the chosen template shows it (%%(text)s)')),
    ('the template belongs to another operator',
     _('the template belongs to another operator')),
    ('no template (?P<n>\\d+)',
     _('no template %(n)s')),
    ("unknown channel (?P<got>'.*'); one of (?P<known>.*)",
     _('unknown channel %(got)s; one of %(known)s')),
    # a template's warning against its type's sample event (services/renderer/preview.py)
    (r"(?P<rest>.*) \(sample (?P<where>\S+)\)", _("%(rest)s (sample %(where)s)")),
    # a publish the broker did not confirm (msgd/web/api.py log_publish_failure)
    (r"the broker did not accept the event: (?P<error>\w+)",
     _("the broker did not accept the event: %(error)s")),
    # a subscriber's phone number (services/senders/sms/phone.py)
    ("invalid phone number (?P<number>'.*'): (?P<rest>.*)", _('invalid phone number %(number)s: %(rest)s')),
    ('empty', _('empty')),
    ('unknown country code', _('unknown country code')),
    ('not a phone number', _('not a phone number')),
    ('too short after the international prefix', _('too short after the international prefix')),
    ('too short', _('too short')),
    ('too long', _('too long')),
    ('wrong number of digits', _('wrong number of digits')),
    ('not a valid number in (?P<where>\\S+)', _('not a valid number in %(where)s')),
    # the template check (services/renderer/standard.py)
    (r"line (?P<line>\d+), column (?P<column>\d+): (?P<rest>.*)", _("line %(line)s, column %(column)s: %(rest)s")),
    (r'a lone "%": write "%%" for a percent sign', _('a lone "%%": write "%%%%" for a percent sign')),
    (r"variable (?P<name>'[^']*') is not in the event \(did you mean (?P<near>'[^']*')\?\)",
     _("variable %(name)s is not in the event (did you mean %(near)s?)")),
    (r"variable (?P<name>'[^']*') is not in the event", _("variable %(name)s is not in the event")),
    (r'"(?P<snippet>.*)" is not closed with "\)"', _("“%(snippet)s” is not closed with “)”")),
    (r'"\{%" is Django syntax: turn on "use Django templating" for this template, or write "%%" for a percent sign',
     _("“{%%” is Django syntax: tick “use Django templating” for this template, or write “%%%%” for a percent"
       " sign")),
    (r'"(?P<written>.*)" has no conversion letter after "\)": write "(?P<fixed>.*)" for text'
     r' \(or d, f, \.2f for numbers\)',
     _("“%(written)s” has no letter after “)”: write “%(fixed)s” for text (or d, f, .2f for numbers)")),
    (r'"(?P<snippet>.*)" has no variable name: write (?P<fixed>\S+), or "%%" for a percent sign',
     _("“%(snippet)s” has no variable name: write %(fixed)s, or “%%%%” for a percent sign")),
    (r'"(?P<snippet>.*)" is incomplete: it needs a conversion letter \(s, d, f\)',
     _("“%(snippet)s” is incomplete: it needs a letter after it (s, d, f)")),
    (r"unsupported conversion character (?P<conv>'.*') in \"(?P<snippet>.*)\" \(use s for text, d for whole"
     r" numbers, f or \.2f for amounts\)",
     _("unknown letter %(conv)s in “%(snippet)s” (s for text, d for whole numbers, f or .2f for amounts)")),
    (r'"%\(\)" has no variable name', _("“%%()” has no variable name")),
    (r'"(?P<snippet>.*)": "\*" widths are not supported', _("“%(snippet)s”: “*” widths are not supported")),
    (r'"(?P<snippet>.*)": width or precision over (?P<limit>\d+)',
     _("“%(snippet)s”: width or precision over %(limit)s")),
    # Django's template syntax errors (services/renderer/django_engine.py)
    (r"\{% (?P<tag>\w+) %\} is not allowed in message templates: a template may use only its own variables"
     r" and \{% load mathfilters %\}",
     _("{%% %(tag)s %%} is not allowed in message templates: a template may use only its own variables and"
       " {%% load mathfilters %%}")),
    (r"Unexpected end of expression in if tag\.", _("the condition of {%% if %%} is not finished")),
    (r"Unused (?P<word>'.*') at end of if expression\.", _("%(word)s is left over at the end of the {%% if %%} condition")),
    (r"Unclosed tag on line (?P<line>\d+): (?P<tag>'[^']*')\. Looking for one of: (?P<ends>.*)\.",
     _("line %(line)s: the tag %(tag)s is not closed: one of %(ends)s is missing")),
    (r"Invalid block tag on line (?P<line>\d+): (?P<tag>'[^']*'), expected (?P<expected>.*)\. Did you forget to"
     r" register or load this tag\?",
     _("line %(line)s: unexpected tag %(tag)s, expected %(expected)s")),
    (r"Invalid block tag on line (?P<line>\d+): (?P<tag>'[^']*')\. Did you forget to register or load this tag\?",
     _("line %(line)s: unknown tag %(tag)s (or a closing tag without its opening one)")),
    (r"Invalid filter: (?P<name>'.*')", _("unknown filter %(name)s")),
    (r"(?P<name>'.*') is not a registered tag library\. Must be one of:\s*(?P<known>.*)",
     _("there is no tag library %(name)s: only %(known)s can be loaded")),
    (r"Empty variable tag on line (?P<line>\d+)", _("line %(line)s: an empty {{ }}")),
    (r"Empty block tag on line (?P<line>\d+)", _("line %(line)s: an empty {%% %%}")),
    (r"Could not parse the remainder: (?P<rest>'.*') from (?P<whole>'.*')",
     _("could not read %(rest)s in %(whole)s")),
    (r"(?P<name>\w+) requires 2 arguments, 1 provided", _("the filter %(name)s needs a value: write %(name)s:value")),
    (r"(?P<name>\w+) requires 1 arguments, 2 provided", _("the filter %(name)s takes no value: write just %(name)s")),
    (r"Variables and attributes may not begin with underscores: (?P<name>'.*')",
     _("names may not begin with an underscore: %(name)s")),
    (r"'for' statements should have at least four words: (?P<tag>.*)",
     _("{%% for %%} is written as {%% for item in list %%}, not “%(tag)s”")),
]]
_KEYED = re.compile(r"(?P<key>[\w.\[\]-]+): (?P<rest>.*)", re.S)


def shown_problem(text: str) -> str:
    """``text`` (a problem, or ``key: problem``; several joined by "; or ") in the reader's
    language where known, else as it is."""
    whole = _one(text)  # a sentence that itself says "; or" (the manual send's text)
    if whole != text:
        return whole
    return f"; {_('or')} ".join(_one(part) for part in text.split("; or "))


_MAX_DEPTH = 8  # keys and nested problems a sentence is read through (a gateway's words may hold many "a: ")


def shown_sentence(text: str) -> str:
    """One sentence (never split at "; or ": the far side's words may hold it) in the reader's
    language where known, else as it is: for the words inside a log row's reason."""
    return _one(text)


def _one(text: str, depth: int = 0) -> str:
    if depth > _MAX_DEPTH:
        return text
    keyed = _KEYED.fullmatch(text)
    if keyed and keyed["rest"] != text:  # the key first: "key: 'x' is not one of ..." is not a value 'key: x'
        rest = _one(keyed["rest"], depth + 1)
        if rest != keyed["rest"]:
            return f"{keyed['key']}: {rest}"
    for pattern, words in _SENTENCES:
        found = pattern.fullmatch(text)
        if found:
            groups = found.groupdict()
            for name in ("rest", "why"):  # itself a problem, or a reason in msgd's words
                if groups.get(name):
                    groups[name] = _one(groups[name], depth + 1)
            for name in ("expected", "choices", "needs"):  # "'empty' or 'endfor'", "semysms or jasmin"
                if name in groups:
                    groups[name] = groups[name].replace(" or ", f" {_('or')} ")
            if "chars" in groups:  # email-validator names a space SPACE
                groups["chars"] = groups["chars"].replace("SPACE", str(_("SPACE")))
            return str(words) % groups
    return text  # (a keyed text whose problem is unknown was tried above: it reads as written)
