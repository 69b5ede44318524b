"""`/api/user/...` routes for the caller's own account: aff, topup, available models and the
per-day dashboard, in the original's shapes (self and token are in accounts.api)."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.selectors import consume_logs, models_for_group, period_start
from oneapi_site.api_envelope import ApiFailure, ok

from .api_serializers import RedeemSerializer
from .authentication import IsUser
from .models import User
from .redemptions import RedeemError, redemption_redeem
from .services import aff_code_ensure


def _user(request: Request) -> User:
    return cast(User, request.user)


class AffCodeView(APIView):
    permission_classes = [IsUser]

    def get(self, request: Request) -> Response:
        return ok(aff_code_ensure(user=_user(request)))


class TopUpView(APIView):
    """`POST /api/user/topup {"key": "<code>"}`: redeem a code; `data` is the quota added."""

    permission_classes = [IsUser]

    def post(self, request: Request) -> Response:
        serializer = RedeemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            code = redemption_redeem(user=_user(request), code=serializer.validated_data["key"])
        except RedeemError as exc:
            raise ApiFailure(exc.message) from None
        return ok(code.quota)


class AvailableModelsView(APIView):
    permission_classes = [IsUser]

    def get(self, request: Request) -> Response:
        return ok(models_for_group(_user(request).group.name))


class DashboardView(APIView):
    """`GET /api/user/dashboard`: the last 7 days per day and model, as the original's chart data."""

    permission_classes = [IsUser]

    def get(self, request: Request) -> Response:
        rows = (
            consume_logs(user=_user(request), since=period_start(7))
            .annotate(day=TruncDate("created_at"))
            .values("day", "model_name")
            .annotate(
                request_count=Count("id"),
                quota=Sum("quota"),
                prompt_tokens=Sum("prompt_tokens"),
                completion_tokens=Sum("completion_tokens"),
            )
            .order_by("day", "model_name")
        )
        data: list[dict[str, Any]] = [
            {
                "day": row["day"].isoformat(),
                "model_name": row["model_name"],
                "request_count": row["request_count"],
                "quota": int(row["quota"] or 0),
                "prompt_tokens": int(row["prompt_tokens"] or 0),
                "completion_tokens": int(row["completion_tokens"] or 0),
            }
            for row in rows
        ]
        return ok(data)
