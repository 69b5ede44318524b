from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from relay.request_id import new_request_id


class RequestIdMiddleware:
    """Every response carries X-Oneapi-Request-Id, as in the original (the relay sets its own)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = new_request_id()  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Oneapi-Request-Id"] = request.request_id  # type: ignore[attr-defined]
        return response
