"""Suspending an ability after the upstream answered 429 (CHANNEL_SUSPEND_SECONDS_FOR_429).

Recorded in `abilities.suspend_until` and announced through the config generation, so every
worker and replica skips the channel for that model until the time has passed.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from django.conf import settings

from .cache import cache
from .db import get_database

logger = logging.getLogger(__name__)


async def suspend_after_429(channel_id: int, model: str) -> None:
    seconds = settings.CHANNEL_SUSPEND_SECONDS_FOR_429
    if seconds <= 0:
        return
    until = time.time() + seconds
    cache.snapshot.suspended_until[(channel_id, model)] = until
    try:
        db = get_database()
        await db.execute(
            "UPDATE abilities SET suspend_until = %s WHERE channel_id = %s AND model = %s",
            (db.timestamp(datetime.fromtimestamp(until, UTC)), channel_id, model),
        )
        await db.execute("UPDATE cache_generations SET version = version + 1 WHERE name = 'config'")
    except Exception:
        logger.exception("could not record the suspension of channel %s", channel_id)
