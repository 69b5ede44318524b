from __future__ import annotations

from celery import shared_task

from .services import release_stale_holds as release


@shared_task(time_limit=600)
def release_stale_holds() -> int:
    """Settle holds whose request never finished (its worker was killed)."""
    return release()
