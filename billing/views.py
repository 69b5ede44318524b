"""Usage pages: the dashboard with its charts, the usage log with CSV export, models and prices.

A user sees only its own consume rows; the key filter accepts only the user's own keys (another
user's key id is a 404, like a missing one).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.models import ApiKey, User
from accounts.runtime_options import get_option

from .admin import format_usd
from .charts import bar_chart
from .models import ConsumeLog, LogType, quota_to_usd
from .selectors import daily_usage, filter_logs, parse_date, price_table, top_models, user_group_name

PERIODS = (7, 30)
DEFAULT_PAGE_SIZE = 20
MAX_EXPORT_ROWS = 100_000
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def usage_charts(user: User | None, days: int) -> dict[str, Any]:
    points = daily_usage(user=user, days=days)
    label = "%m-%d"
    return {
        "cost_chart": bar_chart(
            [(p.day.strftime(label), p.quota) for p in points],
            title=f"Spending per day, last {days} days",
            fmt=lambda v: format_usd(int(v)),
            css_class="cost",
        ),
        "requests_chart": bar_chart(
            [(p.day.strftime(label), p.requests) for p in points], title=f"Requests per day, last {days} days"
        ),
        "period_cost": format_usd(sum(p.quota for p in points)),
        "period_requests": sum(p.requests for p in points),
    }


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    user.refresh_from_db(fields=["quota", "used_quota", "request_count"])
    days = int(request.GET.get("days", 7)) if request.GET.get("days") in {str(p) for p in PERIODS} else 7
    context = {
        "nav": "dashboard",
        "days": days,
        "periods": PERIODS,
        "quota_left": format_usd(user.quota),
        "quota_used": format_usd(user.used_quota),
        "request_count": user.request_count,
        "top_models": [(row, format_usd(row.quota)) for row in top_models(user=user, days=days)],
        "notice": get_option("Notice"),
        **usage_charts(user, days),
    }
    return render(request, "billing/dashboard.html", context)


# ------------------------------------------------------------------------------------ usage log


class LogFilters:
    """The usage page's filters, parsed from the query string; bad values become messages."""

    def __init__(self, request: HttpRequest, user: User) -> None:
        params = request.GET
        self.errors: list[str] = []
        self.start_text = params.get("start", "")
        self.end_text = params.get("end", "")
        self.model = params.get("model", "").strip()[:128]
        self.key_text = params.get("key", "")
        self.start = self._date("start", self.start_text)
        end_day = self._date("end", self.end_text)
        self.end = end_day + timedelta(days=1) if end_day else None  # the end day is included
        self.api_key: ApiKey | None = None
        if self.key_text:
            if not self.key_text.isdigit():
                self.errors.append("The key filter must be one of your keys.")
            else:
                self.api_key = ApiKey.objects.filter(pk=int(self.key_text), user=user).first()
                if self.api_key is None:
                    raise Http404("no such key")
        if self.start and self.end and self.end <= self.start:
            self.errors.append("The end date must not be before the start date.")

    def _date(self, name: str, value: str) -> datetime | None:
        if not value:
            return None
        day = parse_date(value)
        if day is None:
            self.errors.append(f"The {name} date must look like 2025-01-31.")
            return None
        return datetime.combine(day, time.min, tzinfo=UTC)

    def apply(self, logs: QuerySet[ConsumeLog]) -> QuerySet[ConsumeLog]:
        if self.errors:
            return logs.none()
        return filter_logs(
            logs, start=self.start, end=self.end, api_key_id=self.api_key.pk if self.api_key else None, model=self.model
        )

    def query(self) -> str:
        from urllib.parse import urlencode

        values = {"start": self.start_text, "end": self.end_text, "key": self.key_text, "model": self.model}
        return urlencode({k: v for k, v in values.items() if v})


def _user_logs(user: User) -> QuerySet[ConsumeLog]:
    return ConsumeLog.objects.filter(user=user).order_by("-id")


@login_required
def logs_page(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    filters = LogFilters(request, user)
    logs = filters.apply(_user_logs(user))
    try:
        size = min(max(int(request.GET.get("size", DEFAULT_PAGE_SIZE)), 1), settings.MAX_ITEMS_PER_PAGE)
    except ValueError:
        size = DEFAULT_PAGE_SIZE
    page = Paginator(logs, size, allow_empty_first_page=True).get_page(request.GET.get("page"))
    context = {
        "nav": "logs",
        "filters": filters,
        "page": page,
        "rows": [(log, format_usd(log.quota, precise=True)) for log in page.object_list],
        "keys": ApiKey.objects.filter(user=user).order_by("name").values_list("pk", "name"),
        "total_cost": format_usd(logs.filter(type=LogType.CONSUME).aggregate(total=Sum("quota"))["total"] or 0, precise=True),
        "size": size,
    }
    return render(request, "billing/logs.html", context)


def csv_cell(value: Any) -> str:
    """A CSV cell that spreadsheets will not run as a formula (model names come from callers)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(CSV_FORMULA_PREFIXES) else text


CSV_COLUMNS = (
    "time (UTC)", "type", "request id", "key", "model", "upstream model", "prompt tokens", "completion tokens",
    "cached tokens", "cache write tokens", "quota", "cost (USD)", "elapsed ms", "stream", "status",
)


def _csv_rows(logs: QuerySet[ConsumeLog]) -> Iterator[str]:
    class Line:
        value = ""

        def write(self, text: str) -> None:
            self.value = text

    line = Line()
    writer = csv.writer(line)
    writer.writerow(CSV_COLUMNS)
    yield line.value
    for log in logs[:MAX_EXPORT_ROWS].iterator(chunk_size=2000):
        writer.writerow(
            [
                log.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                LogType(log.type).label if log.type in LogType.values else log.type,
                csv_cell(log.request_id),
                csv_cell(log.token_name),
                csv_cell(log.model_name),
                csv_cell(log.upstream_model),
                log.prompt_tokens,
                log.completion_tokens,
                log.cached_tokens,
                log.cache_write_tokens + log.cache_write_1h_tokens,
                log.quota,
                f"{quota_to_usd(log.quota)}",
                log.elapsed_ms,
                "yes" if log.is_stream else "no",
                log.status_code,
            ]
        )
        yield line.value


@login_required
def logs_export(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    filters = LogFilters(request, user)
    if filters.errors:
        return HttpResponse("\n".join(filters.errors), status=400, content_type="text/plain; charset=utf-8")
    logs = filters.apply(_user_logs(user))
    response = StreamingHttpResponse(_csv_rows(logs), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="usage-{stamp}.csv"'
    return response


# ------------------------------------------------------------------------------------ models and prices


def models_page(request: HttpRequest) -> HttpResponse:
    group = user_group_name(request.user)
    rows, ratio = price_table(group)
    context = {"nav": "models", "rows": rows, "group": group, "ratio": ratio}
    return render(request, "billing/models.html", context)
