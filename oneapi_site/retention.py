"""Deleting old rows of big append-only tables (logs, traces) without long locks.

Rows go in batches of RETENTION_BATCH_SIZE primary keys, each its own short transaction, with
a pause between batches so the relay's writers (SQLite has a single writer) get their turn.
A run stops at its time budget; the next scheduled run carries on where it stopped.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

PAUSE_SECONDS = 0.05


def purge_older_than(
    model: type[models.Model], *, days: int, field: str = "created_at", budget_seconds: float = 240.0
) -> int:
    """Delete rows of `model` whose `field` is more than `days` days old; returns how many."""
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deadline = time.monotonic() + budget_seconds
    batch = settings.RETENTION_BATCH_SIZE
    deleted = 0
    while time.monotonic() < deadline:
        ids = list(
            model._default_manager.filter(**{f"{field}__lt": cutoff}).order_by("pk").values_list("pk", flat=True)[:batch]
        )
        if not ids:
            break
        with transaction.atomic():
            count, _ = model._default_manager.filter(pk__in=ids).delete()
        deleted += count
        if len(ids) < batch:
            break
        time.sleep(PAUSE_SECONDS)
    return deleted
