"""Reads for the usage pages, the operator console and the management API's stats.

Charts aggregate the consume log by UTC day with one GROUP BY on the (user, created_at) index;
days without requests are filled in so every chart has one bar per day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import DEFAULT_GROUP, Group, User
from channels_app.models import Ability, Channel, ChannelStatus

from .models import ChannelModelPrice, ConsumeLog, LogType, ModelPrice


@dataclass(frozen=True)
class DayPoint:
    day: date
    quota: int
    requests: int


@dataclass(frozen=True)
class TopRow:
    label: str
    quota: int
    requests: int
    key: Any = None


def consume_logs(*, user: User | None = None, since: datetime | None = None) -> QuerySet[ConsumeLog]:
    logs = ConsumeLog.objects.filter(type=LogType.CONSUME)
    if user is not None:
        logs = logs.filter(user=user)
    if since is not None:
        logs = logs.filter(created_at__gte=since)
    return logs


def period_start(days: int) -> datetime:
    """Midnight UTC `days - 1` days ago: a 7-day chart is today and the six days before."""
    today = timezone.now().date()
    return datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)


def daily_usage(*, user: User | None = None, days: int = 7) -> list[DayPoint]:
    since = period_start(days)
    rows = (
        consume_logs(user=user, since=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(quota=Sum("quota"), requests=Count("id"))
    )
    by_day = {row["day"]: row for row in rows}
    points = []
    for offset in range(days):
        day = since.date() + timedelta(days=offset)
        row = by_day.get(day) or {}
        points.append(DayPoint(day, int(row.get("quota") or 0), int(row.get("requests") or 0)))
    return points


def _top(logs: QuerySet[ConsumeLog], field: str, limit: int) -> list[dict[str, Any]]:
    return list(
        logs.values(field).annotate(quota=Sum("quota"), requests=Count("id")).order_by("-quota", "-requests")[:limit]
    )


def top_models(*, user: User | None = None, days: int = 7, limit: int = 5) -> list[TopRow]:
    rows = _top(consume_logs(user=user, since=period_start(days)), "model_name", limit)
    return [TopRow(r["model_name"] or "(none)", int(r["quota"] or 0), r["requests"]) for r in rows]


def top_users(*, days: int = 7, limit: int = 5) -> list[TopRow]:
    rows = _top(consume_logs(since=period_start(days)), "user_id", limit)
    names = dict(User.objects.filter(pk__in=[r["user_id"] for r in rows]).values_list("pk", "username"))
    return [TopRow(names.get(r["user_id"], f"#{r['user_id']}"), int(r["quota"] or 0), r["requests"], r["user_id"]) for r in rows]


def top_channels(*, days: int = 7, limit: int = 5) -> list[TopRow]:
    rows = _top(consume_logs(since=period_start(days)).exclude(channel_id=None), "channel_id", limit)
    names = dict(Channel.objects.filter(pk__in=[r["channel_id"] for r in rows]).values_list("pk", "name"))
    return [
        TopRow(names.get(r["channel_id"], f"#{r['channel_id']}"), int(r["quota"] or 0), r["requests"], r["channel_id"])
        for r in rows
    ]


def channel_health() -> QuerySet[Channel]:
    return Channel.objects.only(
        "id", "name", "type", "status", "test_time", "response_time", "last_test_error", "priority"
    ).order_by("status", "-priority", "id")


# ------------------------------------------------------------------------------------ models


def user_group_name(user: Any) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return user.group.name
    return DEFAULT_GROUP


def models_for_group(group: str) -> list[str]:
    """Models some enabled channel serves to `group` (what a key of that group may ask for)."""
    return sorted(
        set(
            Ability.objects.filter(group=group, enabled=True, channel__status=ChannelStatus.ENABLED).values_list(
                "model", flat=True
            )
        )
    )


@dataclass(frozen=True)
class ModelPriceRow:
    model: str
    input: Decimal
    output: Decimal
    cached_input: Decimal
    source: str  # "model price", "channel price" or "default price"


def price_table(group: str) -> tuple[list[ModelPriceRow], Decimal]:
    """USD per 1M tokens for each model `group` can use, with the group's ratio applied.

    The relay prices a request by its channel's own price, else the global model price, else the
    default; a model served by several channels shows the global price, or the cheapest channel
    override when there is no global one.
    """
    from accounts.runtime_options import get_options

    ratio = Group.objects.filter(name=group).values_list("ratio", flat=True).first() or Decimal(1)
    models = models_for_group(group)
    global_prices = {p.model: p for p in ModelPrice.objects.filter(model__in=models)}
    channel_ids = Ability.objects.filter(group=group, enabled=True).values_list("channel_id", flat=True)
    overrides: dict[str, ChannelModelPrice] = {}
    for price in ChannelModelPrice.objects.filter(model__in=models, channel_id__in=channel_ids).order_by("-input_price"):
        overrides[price.model] = price  # the last one written is the cheapest
    opts = get_options("DefaultInputPrice", "DefaultOutputPrice")
    rows = []
    for model in models:
        price: ModelPrice | ChannelModelPrice | None = global_prices.get(model) or overrides.get(model)
        if price is not None:
            source = "model price" if model in global_prices else "channel price"
            inp, out = price.input_price, price.output_price
            cached = price.cached_input_price if price.cached_input_price is not None else inp
        else:
            source = "default price"
            inp, out = Decimal(str(opts["DefaultInputPrice"])), Decimal(str(opts["DefaultOutputPrice"]))
            cached = inp
        rows.append(ModelPriceRow(model, inp * ratio, out * ratio, cached * ratio, source))
    return rows, Decimal(ratio)


# ------------------------------------------------------------------------------------ log filters


def parse_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def filter_logs(
    logs: QuerySet[ConsumeLog],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    api_key_id: int | None = None,
    model: str = "",
    token_name: str = "",
    username: str = "",
    channel_id: int | None = None,
    log_type: int | None = None,
    keyword: str = "",
) -> QuerySet[ConsumeLog]:
    if start is not None:
        logs = logs.filter(created_at__gte=start)
    if end is not None:
        logs = logs.filter(created_at__lt=end)
    if api_key_id is not None:
        logs = logs.filter(api_key_id=api_key_id)
    if model:
        logs = logs.filter(Q(model_name=model) | Q(upstream_model=model))
    if token_name:
        logs = logs.filter(token_name=token_name)
    if username:
        logs = logs.filter(username=username)
    if channel_id is not None:
        logs = logs.filter(channel_id=channel_id)
    if log_type is not None:
        logs = logs.filter(type=log_type)
    if keyword:
        logs = logs.filter(
            Q(request_id=keyword) | Q(model_name__icontains=keyword) | Q(token_name__icontains=keyword)
        )
    return logs
