"""Per-worker caches for the relay: relay keys by digest and the routing/pricing snapshot.

Freshness: a background task polls `cache_generations` every CACHE_CHANGE_POLL_SECONDS (one
tiny SELECT per worker, not per request) and reloads what changed; everything is also reloaded
every SYNC_FREQUENCY seconds. Key status and quota are re-checked by the atomic hold anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings

from .db import get_database
from .keyauth import KEY_ENTRY_SQL, KeyEntry, entry_from_row
from .snapshot import Snapshot, load_snapshot

logger = logging.getLogger(__name__)

MAX_CACHED_KEYS = 100_000


class RelayCache:
    def __init__(self) -> None:
        self.snapshot = Snapshot()
        self._keys: dict[str, KeyEntry] = {}
        self._generations: dict[str, int] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._started = False
        self._suspensions: dict[tuple[int, str], float] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._generations = await self._read_generations()
        await self.reload_snapshot()
        self._poller = asyncio.create_task(self._poll_forever(), name="relay-cache-poller")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        self._started = False

    async def _read_generations(self) -> dict[str, int]:
        rows = await get_database().fetchall("SELECT name, version FROM cache_generations")
        return {str(name): int(version) for name, version in rows}

    async def reload_snapshot(self) -> None:
        snapshot = await asyncio.to_thread(load_snapshot)
        # A suspension made while that load was running is not in it yet: keep it.
        now = time.time()
        for key, until in list(self._suspensions.items()):
            if until <= now:
                del self._suspensions[key]
            elif snapshot.suspended_until.get(key, 0.0) < until:
                snapshot.suspended_until[key] = until
        self.snapshot = snapshot

    def suspend(self, channel_id: int, model: str, until: float) -> None:
        """Skip (channel, model) in this worker until `until` (wall clock), reloads included."""
        self._suspensions[(channel_id, model)] = until
        self.snapshot.suspended_until[(channel_id, model)] = until

    async def check_changes(self) -> None:
        """Reload whatever changed since the last look (also used when a lookup misses).

        One lock covers reading the generations and reloading, so a caller arriving while
        another reload is in flight waits for it instead of seeing "no change" too early.
        """
        async with self._reload_lock:
            current = await self._read_generations()
            previous = self._generations or {}
            if current.get("keys") != previous.get("keys"):
                self._keys.clear()
            stale = time.time() - self.snapshot.loaded_at > settings.SYNC_FREQUENCY
            if current.get("config") != previous.get("config") or stale:
                if stale:
                    self._keys.clear()
                await self.reload_snapshot()
            self._generations = current

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(settings.CACHE_CHANGE_POLL_SECONDS)
            try:
                await self.check_changes()
            except Exception:  # keep serving from the last good copy
                logger.exception("relay cache refresh failed")

    # ------------------------------------------------------------------ keys

    async def key_entry(self, digest: str) -> KeyEntry | None:
        entry = self._keys.get(digest)
        if entry is not None:
            return entry
        return await self.reload_key(digest)

    async def reload_key(self, digest: str) -> KeyEntry | None:
        row = await get_database().fetchone(KEY_ENTRY_SQL, (digest,))
        if row is None:
            self._keys.pop(digest, None)
            return None
        entry = entry_from_row(row)
        if len(self._keys) >= MAX_CACHED_KEYS:
            self._keys.clear()
        self._keys[digest] = entry
        return entry

    def forget_key(self, digest: str) -> None:
        self._keys.pop(digest, None)


cache = RelayCache()
