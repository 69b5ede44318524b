"""DRF's EXCEPTION_HANDLER: every error as JSON in the caller's format, never HTML or a traceback.

`/v1/...` callers are SDKs: they get the OpenAI error shape (or Anthropic's when they send
`anthropic-version`), through the relay's renderers. `/api/...` callers get the original's
envelope `{"success": false, "message": ..., "data": null}` with the original's statuses: 200 for
refused input, 401 unauthenticated, 403 role too low, 404 not found.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from relay.errors import RelayError, render_anthropic, render_openai

from .api_envelope import detail_message, envelope

logger = logging.getLogger(__name__)

_BAD_INPUT = (exceptions.ValidationError, exceptions.ParseError)

_RELAY_TYPES = {
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
}


def is_relay_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def _normalise(exc: Exception) -> Exception:
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return exceptions.ValidationError(detail)
    return exc


def _extra_headers(exc: Exception, http_status: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    elif http_status == status.HTTP_401_UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    wait = getattr(exc, "wait", None)
    if wait:
        headers["Retry-After"] = str(math.ceil(wait))
    return headers


def _request_id(request: Any) -> str | None:
    return getattr(request, "request_id", None) if request is not None else None


def _as_relay_error(exc: Exception) -> RelayError:
    relay_error = getattr(exc, "relay_error", None)
    if isinstance(relay_error, RelayError):
        return relay_error
    if isinstance(exc, RelayError):
        return exc
    if isinstance(exc, exceptions.NotAuthenticated):
        return RelayError(
            "You didn't provide an API key. Send it as 'Authorization: Bearer sk-...'.",
            status=401,
            type="invalid_request_error",
            code="invalid_api_key",
        )
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        fallback_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return RelayError(
            detail_message(exc.detail),
            status=exc.status_code,
            type=_RELAY_TYPES.get(exc.status_code, fallback_type),
            code=codes if isinstance(codes, str) else None,
        )
    return RelayError("internal server error", status=500, type="server_error", code="internal_error")


def relay_error_response(error: RelayError, request: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    """An error for an SDK caller: Anthropic's shape when it sent `anthropic-version`, else OpenAI's."""
    request_id = _request_id(request)
    anthropic = request is not None and bool(request.META.get("HTTP_ANTHROPIC_VERSION"))
    body = render_anthropic(error, request_id) if anthropic else render_openai(error, request_id)
    response = HttpResponse(body, status=error.status, content_type="application/json")
    for name, value in {**error.headers, **(headers or {})}.items():
        response[name] = value
    return response


def envelope_error_response(exc: Exception, request: Any) -> Response:
    relay_error = exc if isinstance(exc, RelayError) else getattr(exc, "relay_error", None)
    if isinstance(relay_error, RelayError):
        http_status, message = relay_error.status, relay_error.message
    elif isinstance(exc, _BAD_INPUT):
        http_status, message = status.HTTP_200_OK, detail_message(exc.detail)
    elif isinstance(exc, exceptions.NotAuthenticated):
        http_status, message = exc.status_code, "not signed in and no access token provided"
    elif isinstance(exc, exceptions.APIException):
        http_status, message = exc.status_code, detail_message(exc.detail)
    else:
        http_status = status.HTTP_500_INTERNAL_SERVER_ERROR
        message = f"internal server error (request id: {_request_id(request)})"
    return Response(
        envelope(success=False, message=message), status=http_status, headers=_extra_headers(exc, http_status)
    )


def envelope_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    request = context.get("request")
    exc = _normalise(exc)
    if not isinstance(exc, exceptions.APIException | RelayError):
        view = context.get("view")
        logger.exception("unhandled error in %s", type(view).__name__ if view else "a view", exc_info=exc)
    set_rollback()
    path = request.path if request is not None else ""
    if is_relay_path(path):
        error = _as_relay_error(exc)
        return relay_error_response(error, request, _extra_headers(exc, error.status))
    return envelope_error_response(exc, request)
