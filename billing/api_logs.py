"""`/api/log/...`: the caller's own logs (`self`, `self/search`, `self/stat`) and, for admins,
everyone's (list, search, stat, and `DELETE ?target_timestamp=` for rows older than a time).

Query parameters are the original's: p, size / items_per_page, type, start_timestamp,
end_timestamp, token_name, model_name, and for admins username and channel. A bad value is a
failure that names the parameter, never an empty answer that looks like "no usage".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from django.db.models import QuerySet, Sum
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import IsAdmin, IsUser
from accounts.models import User
from oneapi_site.api_envelope import ok, page_bounds, unix

from .models import ConsumeLog, LogType
from .selectors import filter_logs

MAX_TIMESTAMP = 253402300799  # 9999-12-31


def log_json(log: ConsumeLog, *, admin: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": log.pk,
        "user_id": log.user_id or 0,
        "created_at": unix(log.created_at),
        "type": log.type,
        "content": log.content,
        "username": log.username,
        "token_name": log.token_name,
        "model_name": log.model_name,
        "upstream_model": log.upstream_model,
        "quota": log.quota,
        "prompt_tokens": log.prompt_tokens,
        "completion_tokens": log.completion_tokens,
        "cached_prompt_tokens": log.cached_tokens,
        "cache_write_tokens": log.cache_write_tokens + log.cache_write_1h_tokens,
        "request_id": log.request_id,
        "elapsed_time": log.elapsed_ms,
        "is_stream": log.is_stream,
        "status_code": log.status_code,
    }
    if admin:
        data["channel"] = log.channel_id or 0
    return data


def _int_param(request: Request, name: str, *, minimum: int = 0, maximum: int = MAX_TIMESTAMP) -> int | None:
    raw = request.query_params.get(name, "").strip()
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise exceptions.ValidationError({name: "must be an integer"}) from None
    if not minimum <= value <= maximum:
        raise exceptions.ValidationError({name: f"must be between {minimum} and {maximum}"})
    return value


def _time_param(request: Request, name: str) -> datetime | None:
    value = _int_param(request, name)
    # 0 is what the original's pages send for "no bound".
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def filtered(request: Request, logs: QuerySet[ConsumeLog], *, admin: bool) -> QuerySet[ConsumeLog]:
    params = request.query_params
    log_type = _int_param(request, "type", maximum=100)
    return filter_logs(
        logs,
        start=_time_param(request, "start_timestamp"),
        end=_time_param(request, "end_timestamp"),
        model=params.get("model_name", "").strip(),
        token_name=params.get("token_name", "").strip(),
        username=params.get("username", "").strip() if admin else "",
        channel_id=(_int_param(request, "channel", maximum=2**62) or None) if admin else None,
        log_type=log_type or None,  # 0 = all types, as the original
    )


def _paged(request: Request, logs: QuerySet[ConsumeLog], *, admin: bool) -> Response:
    offset, limit = page_bounds(request)
    rows = [log_json(log, admin=admin) for log in logs.order_by("-id")[offset : offset + limit]]
    return ok(rows, total=logs.count())


def _stat(logs: QuerySet[ConsumeLog]) -> Response:
    consumed = logs.filter(type=LogType.CONSUME).aggregate(quota=Sum("quota"))["quota"] or 0
    return ok({"quota": int(consumed)})


def _own(request: Request) -> QuerySet[ConsumeLog]:
    return ConsumeLog.objects.filter(user=cast(User, request.user))


class SelfLogsView(APIView):
    permission_classes = [IsUser]

    def get(self, request: Request) -> Response:
        return _paged(request, filtered(request, _own(request), admin=False), admin=False)


class SelfLogSearchView(APIView):
    permission_classes = [IsUser]

    def get(self, request: Request) -> Response:
        keyword = request.query_params.get("keyword", "").strip()[:128]
        return _paged(request, filter_logs(_own(request), keyword=keyword), admin=False)


class SelfLogStatView(APIView):
    permission_classes = [IsUser]

    def get(self, request: Request) -> Response:
        return _stat(filtered(request, _own(request), admin=False))


class LogsView(APIView):
    """`GET /api/log/` everyone's logs; `DELETE /api/log/?target_timestamp=` removes older rows."""

    permission_classes = [IsAdmin]

    def get(self, request: Request) -> Response:
        return _paged(request, filtered(request, ConsumeLog.objects.all(), admin=True), admin=True)

    def delete(self, request: Request) -> Response:
        cutoff = _int_param(request, "target_timestamp", minimum=1)
        if cutoff is None:
            raise exceptions.ValidationError({"target_timestamp": "is required (Unix seconds; older rows are deleted)"})
        deleted, _ = ConsumeLog.objects.filter(created_at__lt=datetime.fromtimestamp(cutoff, tz=UTC)).delete()
        return ok(deleted)


class LogSearchView(APIView):
    permission_classes = [IsAdmin]

    def get(self, request: Request) -> Response:
        keyword = request.query_params.get("keyword", "").strip()[:128]
        logs = ConsumeLog.objects.all()
        if keyword:
            logs = filter_logs(logs, keyword=keyword) | logs.filter(username=keyword)
        return _paged(request, logs, admin=True)


class LogStatView(APIView):
    permission_classes = [IsAdmin]

    def get(self, request: Request) -> Response:
        return _stat(filtered(request, ConsumeLog.objects.all(), admin=True))
