"""One error hierarchy for the relay, rendered in the caller's format.

Each error knows its HTTP status, the OpenAI-style `type` and `code`, and whether trying
another channel could help (`retryable`). Renderers produce the OpenAI shape
`{"error": {message, type, param, code}}` or the Anthropic shape
`{"type": "error", "error": {type, message}}`
(https://docs.anthropic.com/en/api/errors).
"""

from __future__ import annotations

from typing import Any

import orjson


class RelayError(Exception):
    status = 500
    type = "server_error"
    code: str | None = None
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        retryable: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if type is not None:
            self.type = type
        if retryable is not None:
            self.retryable = retryable
        self.param = param
        self.headers = headers or {}


class InvalidRequest(RelayError):
    """The caller's request is wrong: never retried, quota untouched."""

    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(RelayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(RelayError):
    status = 403
    type = "permission_error"


class InsufficientQuota(RelayError):
    status = 403
    type = "insufficient_quota"
    code = "insufficient_quota"


class NotFound(RelayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class PayloadTooLarge(RelayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class NoChannel(RelayError):
    status = 503
    type = "server_error"
    code = "model_not_available"


class UpstreamError(RelayError):
    """The upstream answered with an error, or could not be reached."""

    status = 502
    type = "upstream_error"
    code = "bad_upstream_response"

    def __init__(self, message: str, *, upstream_status: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status


def upstream_error_from_status(status: int, message: str, *, code: str | None = None, type: str | None = None) -> UpstreamError:
    """Map an upstream HTTP error to ours. 429, 5xx and 408 may succeed elsewhere; 4xx will not.

    A 401/403 from the upstream is the channel's problem (bad upstream key), not the caller's:
    we answer 502-class errors for those so clients do not think their own key was refused.
    """
    retryable = status == 429 or status >= 500 or status == 408
    if status in (401, 403):
        client_status, retryable = 502, True
    elif status == 429:
        client_status = 429
    elif 400 <= status < 500:
        client_status = status
    else:
        client_status = 502
    return UpstreamError(
        message,
        status=client_status,
        upstream_status=status,
        code=code,
        type=type or ("upstream_error" if client_status >= 500 else "invalid_request_error"),
        retryable=retryable,
    )


def _with_request_id(message: str, request_id: str | None) -> str:
    return f"{message} (request id: {request_id})" if request_id else message


def render_openai(error: RelayError, request_id: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": _with_request_id(error.message, request_id),
                "type": error.type,
                "param": error.param,
                "code": error.code,
            }
        }
    )


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def render_anthropic(error: RelayError, request_id: str | None = None) -> bytes:
    kind = _ANTHROPIC_TYPES.get(error.status, "api_error")
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": _with_request_id(error.message, request_id)}})
