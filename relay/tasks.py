"""Celery tasks for the relay's tables."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from oneapi_site.retention import purge_older_than

from .models import Trace


@shared_task(
    autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True, max_retries=3,
    soft_time_limit=300, time_limit=360,
)
def purge_old_traces(days: int | None = None) -> int:
    """Delete `traces` rows older than TRACE_RETENTION_DAYS, in short batches."""
    return purge_older_than(Trace, days=settings.TRACE_RETENTION_DAYS if days is None else days)
