"""The management API's envelope `{"success": bool, "message": str, "data": ...}`, as the original's.

Business errors travel as exceptions (`ApiFailure`, DRF's `ValidationError`, ...) and are
rendered by `oneapi_site.exception_handler`; views return `ok(...)` on success.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

DEFAULT_PAGE_SIZE = 10  # the original's ItemsPerPage


class ApiFailure(APIException):
    """A refused request that is not a protocol error: HTTP 200 with success=false, as the original."""

    status_code = status.HTTP_200_OK
    default_detail = "the request could not be completed"
    default_code = "failure"


def envelope(*, success: bool, message: str = "", data: Any = None, **extra: Any) -> dict[str, Any]:
    return {"success": success, "message": message, "data": data, **extra}


def ok(data: Any = None, message: str = "", *, http_status: int = status.HTTP_200_OK, **extra: Any) -> Response:
    return Response(envelope(success=True, message=message, data=data, **extra), status=http_status)


def fail(message: str, *, http_status: int = status.HTTP_200_OK, data: Any = None) -> Response:
    return Response(envelope(success=False, message=message, data=data), status=http_status)


def _flatten(detail: Any, field: str = "") -> list[str]:
    if isinstance(detail, Mapping):
        parts: list[str] = []
        for key, value in detail.items():
            name = field if key == "non_field_errors" else (f"{field}.{key}" if field else str(key))
            parts.extend(_flatten(value, name))
        return parts
    if isinstance(detail, Sequence) and not isinstance(detail, str):
        return [part for item in detail for part in _flatten(item, field)]
    text = str(detail)
    return [f"{field}: {text}" if field else text]


def detail_message(detail: Any) -> str:
    """A DRF error detail (str, list or nested dict) as one readable line naming each field."""
    return "; ".join(_flatten(detail)) or "invalid request"


def page_bounds(request: Request) -> tuple[int, int]:
    """`?p=` (0-based page, as the original) and `?size=` / `?items_per_page=`, capped by MAX_ITEMS_PER_PAGE."""

    def as_int(name: str) -> int:
        try:
            return int(request.query_params.get(name, "") or 0)
        except ValueError:
            return 0

    page = max(as_int("p"), 0)
    size = as_int("size") or as_int("items_per_page") or DEFAULT_PAGE_SIZE
    size = min(max(size, 1), settings.MAX_ITEMS_PER_PAGE)
    return page * size, size


def object_id(request: Request, field: str = "id") -> int:
    """The integer id a PUT body names (`{"id": 3, ...}`), or a validation failure naming the field."""
    data = request.data
    if not isinstance(data, Mapping):
        raise ValidationError("the body must be a JSON object")
    value = data.get(field)
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationError({field: "must be an integer"}) from None


def unix(value: datetime | None, default: int = 0) -> int:
    """API timestamps are Unix seconds, as in the original."""
    return int(value.timestamp()) if value is not None else default


@csrf_exempt
def unknown_api_route(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any `/api/...` path that no route matches: a JSON 404 in the envelope, never an HTML page."""
    body = envelope(success=False, message=f"Unknown route {request.method} {request.path}")
    return JsonResponse(body, status=404)
