"""The reason code of a failure (msgd/reasons.py) on the message, its attempts and the send
claim: a stable code beside the far side's own words. Failed and undelivered messages recorded
before it get their fault class's code, so every failure has one."""

from typing import Any

from django.db import migrations, models

BY_FAULT = {
    "recipient": "recipient.refused",
    "gateway": "gateway.refused",
    "content": "content.refused",
    "transient-exhausted": "transient.failure",
    "unknown": "unknown.failure",
}


def codes_for_old_failures(apps: Any, schema_editor: Any) -> None:
    messages = apps.get_model("msgd", "Message").objects
    for fault, code in BY_FAULT.items():
        messages.filter(state__in=("failed", "undelivered"), fault=fault, reason_code="").update(reason_code=code)
    messages.filter(state__in=("failed", "undelivered"), reason_code="").update(reason_code="unknown.failure")


class Migration(migrations.Migration):

    dependencies = [
        ("msgd", "0007_labels_in_russian_and_english"),
    ]

    operations = [
        migrations.AddField(
            model_name="attempt",
            name="reason_code",
            field=models.CharField(blank=True, db_default="", default="", max_length=48, verbose_name="reason code"),
        ),
        migrations.AddField(
            model_name="claim",
            name="reason_code",
            field=models.CharField(blank=True, db_default="", default="", max_length=48),
        ),
        migrations.AddField(
            model_name="message",
            name="reason_code",
            field=models.CharField(blank=True, db_default="", db_index=True, default="", help_text="A failure's stable code (msgd/reasons.py), explained in the reader's language; the reason beside it is in the far side's own words.", max_length=48, verbose_name="reason code"),
        ),
        migrations.RunPython(codes_for_old_failures, migrations.RunPython.noop),
    ]
