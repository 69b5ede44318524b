"""Celery tasks for billing: stale holds, log retention, daily rollups.

All of them are idempotent (a repeated run finds nothing more to do, or recomputes the same
rows) and retry on database hiccups.
"""

from __future__ import annotations

from datetime import date

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from oneapi_site.retention import purge_older_than

from .models import ConsumeLog
from .rollups import usage_rollup_day, usage_rollup_recent
from .services import release_stale_holds as release

RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "retry_jitter": True, "max_retries": 3}


@shared_task(soft_time_limit=540, time_limit=600, **RETRY)
def release_stale_holds() -> int:
    """Settle holds whose request never finished (its worker was killed)."""
    return release()


@shared_task(soft_time_limit=300, time_limit=360, **RETRY)
def purge_old_logs(days: int | None = None) -> int:
    """Delete `logs` rows older than LOG_RETENTION_DAYS, in short batches."""
    return purge_older_than(ConsumeLog, days=settings.LOG_RETENTION_DAYS if days is None else days)


@shared_task(soft_time_limit=300, time_limit=360, **RETRY)
def rollup_usage(day: str) -> int:
    """Recompute the daily usage of `day` (ISO date, UTC)."""
    return usage_rollup_day(day=date.fromisoformat(day))


@shared_task(soft_time_limit=300, time_limit=360, **RETRY)
def rollup_recent_usage() -> int:
    """Yesterday and today, so late settlements reach the right day."""
    return usage_rollup_recent()
