"""Opt-in batching of the counters a settlement moves (BATCH_UPDATE_ENABLED, as the original).

With it on, a settlement still claims its charge row and writes its log row at once (so
settlement stays idempotent and nothing is lost from the logs), but the counter updates it
implies (key and user quota returned or charged beyond the hold, used quota, request counts,
channel usage) are summed in memory and written every BATCH_UPDATE_INTERVAL seconds and at
shutdown: a few UPDATEs per interval instead of three per request. Holds are never batched:
they stay atomic conditional updates, so quota can never be overspent, batched or not. The
price is the original's: counters a killed worker had not flushed yet are lost (the charge and
log rows are not, so they can be reconciled).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from django.conf import settings

from oneapi_site import conf

if TYPE_CHECKING:
    from relay.db import Cursor, Database

    from .ledger import Settlement

logger = logging.getLogger(__name__)


class CounterBatch:
    def __init__(self) -> None:
        self.keys: dict[int, list[object]] = {}  # id -> [quota delta, used, last accessed_at]
        self.users: dict[int, list[int]] = {}  # id -> [quota delta, used, requests]
        self.channels: dict[int, int] = {}  # id -> used
        self._task: asyncio.Task[None] | None = None

    def add(self, s: Settlement, delta: int) -> None:
        key = self.keys.setdefault(s.key_id, [0, 0, None])
        key[0] = int(key[0]) + delta  # type: ignore[call-overload]
        key[1] = int(key[1]) + s.quota  # type: ignore[call-overload]
        key[2] = s.created_at
        user = self.users.setdefault(s.user_id, [0, 0, 0])
        user[0] += delta
        user[1] += s.quota
        user[2] += 0 if s.refund else 1
        if s.channel_id is not None and s.quota:
            self.channels[s.channel_id] = self.channels.get(s.channel_id, 0) + s.quota

    def pending(self) -> bool:
        return bool(self.keys or self.users or self.channels)

    async def flush(self, db: Database) -> None:
        if not self.pending():
            return
        from .ledger import _SETTLE_CHANNEL, _SETTLE_KEY, _SETTLE_USER

        keys, users, channels = self.keys, self.users, self.channels
        self.keys, self.users, self.channels = {}, {}, {}

        def body(cur: Cursor) -> None:
            for key_id, (delta, used, accessed) in keys.items():
                cur.execute(_SETTLE_KEY, (delta, used, accessed, key_id))
            for user_id, (delta, used, requests) in users.items():
                cur.execute(_SETTLE_USER, (delta, used, requests, user_id))
            for channel_id, used in channels.items():
                cur.execute(_SETTLE_CHANNEL, (used, channel_id))

        try:
            await db.transaction(body)
        except Exception:
            # Put the sums back: the next flush tries again rather than losing them.
            for key_id, (delta, used, accessed) in keys.items():
                slot = self.keys.setdefault(key_id, [0, 0, accessed])
                slot[0], slot[1] = int(slot[0]) + int(delta), int(slot[1]) + int(used)  # type: ignore[call-overload]
            for user_id, values in users.items():
                slot_u = self.users.setdefault(user_id, [0, 0, 0])
                for i in range(3):
                    slot_u[i] += values[i]
            for channel_id, used in channels.items():
                self.channels[channel_id] = self.channels.get(channel_id, 0) + used
            raise

    def start(self, db: Database) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(db), name="billing-batch-flush")

    async def _run(self, db: Database) -> None:
        while True:
            await asyncio.sleep(settings.BATCH_UPDATE_INTERVAL)
            try:
                await self.flush(db)
            except Exception:
                logger.exception("batched counter flush failed; kept for the next one")

    async def stop(self, db: Database) -> None:
        """At shutdown: stop the timer and write what is left."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await self.flush(db)


batch = CounterBatch()


def enabled() -> bool:
    return bool(conf.settings.BATCH_UPDATE_ENABLED)  # read per relay request: see oneapi_site/conf.py
