"""What a failed upstream attempt does to its channel.

- 429: the ability (channel x model) is suspended for CHANNEL_SUSPEND_SECONDS_FOR_429; 5xx: for
  the shorter CHANNEL_SUSPEND_SECONDS_FOR_5XX. Recorded in `abilities.suspend_until` and
  announced through the config generation, so every worker and replica skips the channel for
  that model until the time has passed (each reloads within CACHE_CHANGE_POLL_SECONDS).
- A refused key or exhausted upstream billing (channels_app.health.should_auto_disable)
  disables the channel (status 3) when AutomaticDisableChannelEnabled is on. That runs off the
  request (the ORM in a thread, then an e-mail to the operator); the request itself goes on
  to retry elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from django.conf import settings

from . import metrics
from .cache import cache
from .db import get_database
from .errors import UpstreamError
from .snapshot import ChannelEntry

logger = logging.getLogger(__name__)

_background: set[asyncio.Task[None]] = set()


async def suspend(channel_id: int, model: str, seconds: int) -> None:
    if seconds <= 0:
        return
    until = time.time() + seconds
    cache.suspend(channel_id, model, until)
    try:
        db = get_database()
        await db.execute(
            "UPDATE abilities SET suspend_until = %s WHERE channel_id = %s AND model = %s",
            (db.timestamp(datetime.fromtimestamp(until, UTC)), channel_id, model),
        )
        await db.execute("UPDATE cache_generations SET version = version + 1 WHERE name = 'config'")
    except Exception:
        logger.exception("could not record the suspension of channel %s", channel_id)


async def suspend_after_429(channel_id: int, model: str) -> None:
    await suspend(channel_id, model, settings.CHANNEL_SUSPEND_SECONDS_FOR_429)


async def after_upstream_error(channel: ChannelEntry, model: str, err: UpstreamError) -> None:
    status = err.upstream_status
    metrics.upstream_error(model, str(channel.id), status)
    if status == 429:
        await suspend(channel.id, model, settings.CHANNEL_SUSPEND_SECONDS_FOR_429)
    elif status is not None and status >= 500:
        await suspend(channel.id, model, settings.CHANNEL_SUSPEND_SECONDS_FOR_5XX)
    elif status is not None and cache.snapshot.options.get("AutomaticDisableChannelEnabled"):
        from channels_app.health import should_auto_disable

        if should_auto_disable(status=status, code=err.code, kind=err.type, message=err.message):
            task = asyncio.create_task(_disable(channel.id, f"upstream answered {status}: {err.message}"))
            _background.add(task)
            task.add_done_callback(_background.discard)


async def _disable(channel_id: int, reason: str) -> None:
    from channels_app.health import channel_auto_disable_by_id

    try:
        await asyncio.to_thread(channel_auto_disable_by_id, channel_id=channel_id, reason=reason)
    except Exception:
        logger.exception("could not auto-disable channel %s", channel_id)
