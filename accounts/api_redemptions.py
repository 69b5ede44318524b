"""Admin `/api/redemption/...` routes: list, search, get, create a batch, edit, delete.

Only a code's first characters are ever listed: the raw codes are in the answer to the `POST`
that created them, once (`data` is their list, as the original returns it).
"""

from __future__ import annotations

from typing import Any, cast

from django.db.models import Q, QuerySet
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from oneapi_site.api_envelope import ApiFailure, object_id, ok, page_bounds, unix

from .api_serializers import RedemptionCreateSerializer, RedemptionUpdateSerializer
from .authentication import IsAdmin
from .models import Redemption, RedemptionStatus, User
from .redemptions import redemptions_create


def redemption_json(row: Redemption) -> dict[str, Any]:
    return {
        "id": row.pk,
        "user_id": row.created_by_id or 0,
        "key": f"{row.display_prefix}…",
        "name": row.name,
        "status": row.status,
        "quota": row.quota,
        "created_time": unix(row.created_at),
        "redeemed_time": unix(row.redeemed_at),
        "used_user_id": row.redeemed_by_id or 0,
    }


def _rows() -> QuerySet[Redemption]:
    return Redemption.objects.order_by("-id")


def _paged(request: Request, rows: QuerySet[Redemption]) -> Response:
    offset, limit = page_bounds(request)
    return ok([redemption_json(r) for r in rows[offset : offset + limit]], total=rows.count())


def redemption_or_404(redemption_id: int) -> Redemption:
    row = Redemption.objects.filter(pk=redemption_id).first()
    if row is None:
        raise exceptions.NotFound("no such redemption code")
    return row


class RedemptionCollectionView(APIView):
    permission_classes = [IsAdmin]

    def get(self, request: Request) -> Response:
        return _paged(request, _rows())

    def post(self, request: Request) -> Response:
        serializer = RedemptionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            created = redemptions_create(
                name=data["name"], quota=data["quota"], count=data["count"], created_by=cast(User, request.user)
            )
        except ValueError as exc:
            raise ApiFailure(str(exc)) from None
        return ok([code for _, code in created])

    def put(self, request: Request) -> Response:
        row = redemption_or_404(object_id(request))
        status_only = request.query_params.get("status_only", "").lower() not in {"", "0", "false"}
        serializer = RedemptionUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if status_only:
            data = {k: v for k, v in data.items() if k == "status"}
        if "status" in data and row.status == RedemptionStatus.USED:
            raise ApiFailure("this code has been used; its status cannot change")
        if "quota" in data and row.status == RedemptionStatus.USED:
            raise ApiFailure("this code has been used; its quota cannot change")
        for name, value in data.items():
            setattr(row, name, value)
        if data:
            row.save(update_fields=list(data))
        return ok(redemption_json(row))


class RedemptionSearchView(APIView):
    permission_classes = [IsAdmin]

    def get(self, request: Request) -> Response:
        keyword = request.query_params.get("keyword", "").strip()
        rows = _rows()
        if keyword:
            condition = Q(name__icontains=keyword) | Q(display_prefix__startswith=keyword.lower()[:8])
            if keyword.isdigit():
                condition |= Q(pk=int(keyword))
            rows = rows.filter(condition)
        return _paged(request, rows)


class RedemptionDetailView(APIView):
    permission_classes = [IsAdmin]

    def get(self, request: Request, redemption_id: int) -> Response:
        return ok(redemption_json(redemption_or_404(redemption_id)))

    def delete(self, request: Request, redemption_id: int) -> Response:
        redemption_or_404(redemption_id).delete()
        return ok()
