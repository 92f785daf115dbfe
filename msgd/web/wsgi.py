"""The WSGI application of the admin and the API (``gunicorn msgd.web.wsgi:application``)."""

from __future__ import annotations

from msgd import store

store.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
