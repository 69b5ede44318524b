"""GET/DELETE /v1/responses/{id}, POST .../cancel, GET .../input_items: the stored Responses.

https://platform.openai.com/docs/api-reference/responses/get
A key sees only its owner's responses; anyone else gets the same 404 as for a missing id.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .authentication import RelayKeyAuthentication
from .errors import InvalidRequest, NotFound
from .models import StoredResponse


def _owned(request: Request, response_id: str) -> StoredResponse:
    stored = StoredResponse.objects.filter(pk=response_id, user_id=request.auth.user_id).first()
    if stored is None:
        raise NotFound(f"No response found with id '{response_id}'.", param="response_id")
    return stored


class StoredResponseView(APIView):
    authentication_classes = [RelayKeyAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request, response_id: str) -> Response:
        return Response(_owned(request, response_id).response)

    def delete(self, request: Request, response_id: str) -> Response:
        _owned(request, response_id).delete()
        return Response({"id": response_id, "object": "response", "deleted": True})


class CancelResponseView(APIView):
    authentication_classes = [RelayKeyAuthentication]
    permission_classes = [IsAuthenticated]

    def post(self, request: Request, response_id: str) -> Response:
        stored = _owned(request, response_id)
        # Only background responses can be cancelled; every response kept here has finished.
        raise InvalidRequest(f"response {stored.pk} is not a background response in progress", code="not_cancellable")


class InputItemsView(APIView):
    authentication_classes = [RelayKeyAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request, response_id: str) -> Response:
        """Newest first by default (`order=desc`), paginated by `limit` and `after` like the API."""
        items: list[Any] = list(_owned(request, response_id).input_items)
        if request.query_params.get("order", "desc") == "desc":
            items.reverse()
        after = request.query_params.get("after")
        if after:
            ids = [item.get("id") for item in items if isinstance(item, dict)]
            items = items[ids.index(after) + 1 :] if after in ids else []
        try:
            limit = max(1, min(int(request.query_params.get("limit", 20)), 100))
        except ValueError:
            raise InvalidRequest("limit must be a whole number from 1 to 100", param="limit") from None
        page = items[:limit]
        first = page[0].get("id") if page and isinstance(page[0], dict) else None
        last = page[-1].get("id") if page and isinstance(page[-1], dict) else None
        return Response({"object": "list", "data": page, "first_id": first, "last_id": last, "has_more": len(items) > limit})
