"""An operator's sender e-mail is checked when it is loaded or saved, as the e-mail sender will
check it (issue 11, point 3): the operator learns of ``noc@best..example`` at once, not from a
failed message."""

from __future__ import annotations

import pytest

from msgd.config import ConfigError, load_config

BAD = ["desk7@isp..example", "desk7@isp.example.", "desk7@i sp.example", "desk7@@isp.example"]
GOOD = ["noc@best.example", "root@localhost", "Провайдер <noc@faß.de>", "noc@isp.local"]


@pytest.mark.parametrize("address", BAD)
def test_config_load_refuses_a_malformed_sender_address(db: str, address: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(f"operators:\n  - {{code: best, name: B, email: '{address}'}}\n")
    (error,) = err.value.errors
    assert error.startswith(f"operators[best].email: invalid sender e-mail address {address!r}: ")
    assert error.endswith("(line 2)")


@pytest.mark.parametrize("address", GOOD)
def test_config_load_accepts_what_the_sender_sends_from(db: str, address: str) -> None:
    from msgd.store.models import Operator

    load_config(f"operators:\n  - {{code: best, name: B, email: '{address}'}}\n")
    assert Operator.objects.get(code="best").email == address


@pytest.mark.parametrize(("address", "ok"), [*((a, False) for a in BAD), *((a, True) for a in GOOD)])
def test_the_admins_operator_form_checks_the_sender_address(db: str, address: str, ok: bool) -> None:
    from django.contrib import admin
    from django.utils import translation

    from msgd.store.models import Operator
    from msgd.web.admin_site import OperatorForm

    assert admin.site._registry[Operator].form is OperatorForm
    form = OperatorForm(data={"code": "best", "name": "B", "email": address, "timezone": "Europe/Moscow",
                              "attempts": "3"})
    with translation.override("en"):  # the words are the reader's language (Russian: test_admin_operator_form)
        assert form.is_valid() is ok, form.errors
    if not ok:
        assert form.errors["email"][0].startswith(f"invalid sender e-mail address {address!r}: ")
