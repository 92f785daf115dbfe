"""Login throttling (django-axes) for the admin's login form."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend


class ThrottledLogins(AxesStandaloneBackend):
    """django-axes' check, for logins that come with a request (the admin's login form).

    A login without one (a script calling ``authenticate``, Django's test client) is not an
    attempt over the network and is left to the next backend instead of failing."""

    def authenticate(self, request: Any, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> Any:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
