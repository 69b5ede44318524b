"""Daily usage rollups: the consume log summed per UTC day x user x key x model x channel."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from .models import ConsumeLog, LogType, UsageDaily


def usage_rollup_day(*, day: date) -> int:
    """Recompute `day` from the log (replacing what was there); returns the rows written.

    Whole-day recomputation keeps it idempotent: late settlements, retried tasks and
    overlapping runs all end with the same rows.
    """
    start = datetime.combine(day, time.min, tzinfo=UTC)
    logs = ConsumeLog.objects.filter(
        created_at__gte=start, created_at__lt=start + timedelta(days=1), type__in=[LogType.CONSUME, LogType.ERROR]
    )
    consume = Q(type=LogType.CONSUME)
    groups = logs.values("user_id", "api_key_id", "model_name", "channel_id").annotate(
        requests=Count("id", filter=consume),
        errors=Count("id", filter=Q(type=LogType.ERROR)),
        prompt=Sum("prompt_tokens", filter=consume),
        completion=Sum("completion_tokens", filter=consume),
        cached=Sum("cached_tokens", filter=consume),
        spent=Sum("quota", filter=consume),
        elapsed=Sum("elapsed_ms", filter=consume),
    )
    rows = [
        UsageDaily(
            day=day,
            user_id=group["user_id"],
            api_key_id=group["api_key_id"],
            model_name=group["model_name"] or "",
            channel_id=group["channel_id"],
            requests=group["requests"],
            errors=group["errors"],
            prompt_tokens=group["prompt"] or 0,
            completion_tokens=group["completion"] or 0,
            cached_tokens=group["cached"] or 0,
            quota=group["spent"] or 0,
            elapsed_ms=group["elapsed"] or 0,
        )
        for group in groups
    ]
    with transaction.atomic():
        UsageDaily.objects.filter(day=day).delete()
        UsageDaily.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def usage_rollup_recent() -> int:
    today = timezone.now().astimezone(UTC).date()
    return usage_rollup_day(day=today - timedelta(days=1)) + usage_rollup_day(day=today)
