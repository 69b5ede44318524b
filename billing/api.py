"""`GET /api/cost/request/<request_id>`: what one relay request cost, in the original's shape.

The original answered anyone who knew a request id. Here the answer goes only to the relay key
that made the request, to its owner (session or access token) or to an admin; everyone else
gets the same 404 as for an unknown id, so a request id reveals nothing.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import CsrfSessionAuthentication, LenientAccessTokenAuthentication
from accounts.models import Role
from oneapi_site.api_envelope import unix
from relay.authentication import KeyOwnerAuthentication
from relay.keyauth import KeyEntry

from .models import QUOTA_PER_USD, ChargeStatus, RequestCharge


def charge_json(charge: RequestCharge) -> dict[str, Any]:
    # While the request runs only its hold is known; it is shown like the original's provisional row.
    quota = charge.held_quota if charge.status == ChargeStatus.HELD else charge.quota
    return {
        "id": charge.pk,
        "created_time": unix(charge.created_at),
        "user_id": charge.user_id,
        "request_id": charge.request_id,
        "quota": quota,
        "cost_usd": quota / QUOTA_PER_USD,
        "status": ChargeStatus(charge.status).label,
    }


def charge_visible_to(request: Request, request_id: str) -> RequestCharge:
    """The charge if the caller may see it; otherwise 404, whether or not it exists."""
    charges = RequestCharge.objects.filter(request_id=request_id)
    if isinstance(request.auth, KeyEntry):
        charges = charges.filter(api_key_id=request.auth.key_id)
    elif request.user.role < Role.ADMIN:
        charges = charges.filter(user_id=request.user.pk)
    charge = charges.first()
    if charge is None:
        raise Http404("no such request")
    return charge


class RequestCostView(APIView):
    # Access token first: an unknown token may still be a relay key without its `sk-` prefix.
    authentication_classes = [LenientAccessTokenAuthentication, KeyOwnerAuthentication, CsrfSessionAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request, request_id: str) -> Response:
        return Response(charge_json(charge_visible_to(request, request_id)))
