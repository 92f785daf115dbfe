"""HTTP plumbing of the API: tokens, allowed methods, reading JSON bodies, JSON errors.

Every answer under /api/ (and /healthz, /readyz) is JSON, errors included:
400 ``{"error", "errors": [{"field", "message"}]}`` for bad input, 401 without
a valid token, 403 when the token's scopes or operators do not allow the request, 404,
405 with ``Allow``, 413 naming the body size limit, 500.
Django's own HTML error pages are kept for the admin.  Bodies are decoded with
``msgd.safejson`` (size, depth, digits and Unicode checked before any use).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from msgd import safejson, storable
from msgd.store.django_settings import max_body_bytes

View = Callable[..., HttpResponse]
# Paths whose errors are JSON; everything else (the admin) keeps Django's pages.
JSON_PREFIXES = ("/api/", "/healthz", "/readyz")


class Invalid(Exception):
    """A request that is refused as a whole: 400 with these field errors."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("invalid request")
        self.errors = errors


class TooLarge(Exception):
    """The body is larger than the limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than the limit of {limit} bytes")
        self.limit = limit


def field_error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def bad_request(errors: list[dict[str, str]]) -> JsonResponse:
    return JsonResponse({"error": "invalid request", "errors": errors}, status=400,
                        json_dumps_params={"ensure_ascii": False})


def too_large(limit: int) -> JsonResponse:
    message = (f"the request body is larger than the limit of {limit} bytes;"
               " send fewer events per request")
    return JsonResponse({"error": "request body too large", "max_bytes": limit,
                         "errors": [field_error("(body)", message)]}, status=413)


def method_not_allowed(*allowed: str) -> JsonResponse:
    return JsonResponse({"error": "method not allowed"}, status=405, headers={"Allow": ", ".join(allowed)})


def allow(*methods: str) -> Callable[[View], View]:
    """Answer 405 (JSON, with ``Allow``) to any other method; GET also allows HEAD."""
    allowed = (*methods, "HEAD") if "GET" in methods and "HEAD" not in methods else methods

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                return method_not_allowed(*methods)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def token_required(view: View) -> View:
    """401 (JSON, ``WWW-Authenticate: Token``) unless ``Authorization: Token <key>`` is valid (the
    token, its scopes and operators are kept a few seconds: msgd/web/tokens.py)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from msgd.web import tokens

        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        found = tokens.authenticate(key.strip()) if scheme.lower() == "token" else None
        if found is None:
            resp = JsonResponse({"error": "authentication required: send 'Authorization: Token <key>'"},
                                status=401)
            resp["WWW-Authenticate"] = "Token"
            return resp
        request.api_token, request.api_token_operators = found
        return view(request, *args, **kwargs)

    return wrapped


def forbidden(message: str, errors: list[dict[str, str]] | None = None) -> JsonResponse:
    return JsonResponse({"error": f"forbidden: {message}", **({"errors": errors} if errors else {})},
                        status=403, json_dumps_params={"ensure_ascii": False})


class Forbidden(Exception):
    """The token may not do this (403 with the reason; field errors name what is outside its operators)."""

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


def scope_required(scope: str, methods: tuple[str, ...] | None = None) -> Callable[[View], View]:
    """403 (JSON) unless the request's token has ``scope`` (``ingest``, ``read``, ``resend``);
    with ``methods``, only for those methods. Goes after ``token_required``."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            token = request.api_token
            if (methods is None or request.method in methods) and not getattr(token, scope, False):
                return forbidden(f"the token {token.name!r} has no {scope!r} scope"
                                 f" (it has: {', '.join(token.scopes) or 'none'})")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def token_operators(request: HttpRequest) -> set[str] | None:
    """The operator codes the request's token is limited to (None: every operator)."""
    if getattr(request, "api_token", None) is None:
        return set()
    codes = request.api_token_operators
    return set(codes) if codes is not None else None


def read_json(request: HttpRequest) -> Any:
    """The request's JSON body; Invalid (400) or TooLarge (413) when it cannot be accepted."""
    if request.content_type != "application/json":
        raise Invalid([field_error("(body)", "send Content-Type: application/json")])
    limit = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or max_body_bytes())
    try:
        body = request.body
    except RequestDataTooBig:
        _drain(request, 8 * limit)
        raise TooLarge(limit) from None
    if len(body) > limit:
        raise TooLarge(limit)
    try:
        return safejson.loads(body, max_bytes=limit)
    except safejson.InvalidJSON as exc:
        raise Invalid([field_error("(body)", exc.reason)]) from None


def _drain(request: HttpRequest, cap: int) -> None:
    """Read and drop an oversized body (up to ``cap`` bytes) before answering 413: a server
    that closes a socket with unread data resets the connection, and the client may then
    lose the answer."""
    left = min(int(request.META.get("CONTENT_LENGTH") or 0), cap)
    try:
        while left > 0 and (chunk := request.read(min(left, 65536))):
            left -= len(chunk)
    except OSError:
        pass  # the client went away: nobody waits for the answer


def json_errors(view: View) -> View:
    """Invalid -> 400, Forbidden -> 403 and TooLarge -> 413, as JSON."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Invalid as exc:
            return bad_request(exc.errors)
        except Forbidden as exc:
            return forbidden(exc.message, exc.errors)
        except TooLarge as exc:
            return too_large(exc.limit)

    return wrapped


def refuse_unstorable_input(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: a path or query parameter holding NUL gets 400 before any view runs (JSON under
    /api/, Django's page elsewhere): PostgreSQL refuses NUL even in a lookup, which made an
    admin filter such as ?state=%00 a 500. Form fields refuse NUL themselves (Django's
    ProhibitNullCharactersValidator) and JSON bodies are checked by the views."""

    def middleware(request: HttpRequest) -> HttpResponse:
        errors = [field_error("(path)", why)] if (why := storable.problem(request.path)) else []
        for name, values in request.GET.lists():
            for value in (name, *values):
                if (why := storable.problem(value)) is not None:
                    errors.append(field_error(storable.storable(name), why))
                    break
        if not errors:
            return get_response(request)
        if _wants_json(request):
            return bad_request(errors)
        return defaults.bad_request(request, SuspiciousOperation(errors[0]["message"]))

    return middleware


# -- Django's error handlers (urls.py): JSON under /api/, the stock pages elsewhere -------------
def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES)


def error_400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _wants_json(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return too_large(int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or max_body_bytes()))
    return bad_request([field_error("(request)", "the request was refused as malformed")])


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _wants_json(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse({"error": "forbidden"}, status=403)


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _wants_json(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"error": "not found"}, status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    if not _wants_json(request):
        return defaults.server_error(request)
    return JsonResponse({"error": "internal error: the details are in msgd's log"}, status=500)
