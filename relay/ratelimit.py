"""Rate limits on the hot relay path: per key (GLOBAL_RELAY_RATE_LIMIT) and per channel.

Without Redis: the in-process sliding window of oneapi_site.ratelimit (a dict lookup and a
deque operation, no I/O). With Redis: EVALSHAs on the relay's own asyncio client (the hits of
one loop turn pipelined together, a hot key's hits counted ahead of time), so every replica
shares the counts. Django's cache is not used here: its sync client would block the event
loop. If Redis fails, counting falls back to this process until it is back.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from oneapi_site import conf
from oneapi_site.ratelimit import (
    ALLOWED,
    SLIDING_WINDOW_LUA,
    Decision,
    Limit,
    client_ip,
    local_window,
    redis_failed,
    relay_limit,
    unique_member,
)

from . import metrics
from .db import answer
from .errors import NoChannel, RelayError
from .snapshot import ChannelEntry

SLIDING_WINDOW_SHA = hashlib.sha1(SLIDING_WINDOW_LUA.encode()).hexdigest()  # Redis names scripts by SHA-1


class RateLimited(RelayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


_PIPELINE_MAX = 128  # calls per round trip
CLIENT_NAME = "oneapi-relay-limiter"  # how the relay's connections appear in Redis' CLIENT LIST
# A hot key's hits are counted in Redis ahead of time, about this long of its own traffic (see
# RelayLimiter), at most _AHEAD_MAX hits and never more than 1/_AHEAD_SHARE of the window's room.
_AHEAD_SECONDS = 0.1
_AHEAD_MAX = 64
_AHEAD_SHARE = 64
_CALL_MAX_HITS = 1_000  # hits one EVALSHA counts (its ZADD's arguments are on Lua's C stack)
_HOT_HITS = 4  # hits per _AHEAD_SECONDS that make a key hot
_MAX_LEASES = 10_000  # keys with such hits in hand; past that all are given up (the strict side)


@dataclass(slots=True)
class _Call:
    """One EVALSHA not sent yet: the hits of one key queued in this loop turn, plus `ahead`."""

    key: str
    limit: int
    window_ms: int
    waiters: list[asyncio.Future[Decision]]
    ahead: int = 0


@dataclass(slots=True)
class _Lease:
    """A key's hits counted in Redis ahead of time and not used yet, in this process."""

    left: int = 0
    until: float = 0.0  # they are given up then, still counted in the window: the strict side
    room: int = 0  # the window's room after them, as Redis last said (RateLimit-Remaining)
    since: float = -1.0  # when the period the key's rate is being measured over began
    hits: int = 0  # the key's hits in that period
    rate: float = 0.0  # hits per second in the period before (0 after a pause)
    ahead_sent: bool = False  # a call counting ahead is on its way: no second one meanwhile


class RelayLimiter:
    """Counts relay hits in the shared Redis window, or in this process without Redis.

    With Redis, the hits queued during one turn of the event loop go out as one pipeline of
    EVALSHAs: redis-py's own cost per command falls from ~55 us alone to ~15-25 us in batches
    of 4-16 (measured here), and one round trip serves them all. The hits of one key in that
    turn are one EVALSHA that counts them all; each still gets its own verdict, as if counted
    one after another.

    A hot key (at a rate of _HOT_HITS or more per _AHEAD_SECONDS) also counts, in the same
    EVALSHA, the hits that rate brings in the next _AHEAD_SECONDS, and this process uses them
    before it asks Redis again (one such call on its way at a time): a key sending thousands of
    requests a second costs one EVALSHA per ~64 requests, not one per loop turn (bench/
    RESULTS.md). Counting ahead never lets more through than the limit, as every hit is in
    Redis before it is allowed; hits counted but not used within _AHEAD_SECONDS are given up,
    so a key can be refused up to that much of its own traffic early. Keys far from hot, and
    any window with less than _AHEAD_SHARE hits of room, are counted hit by hit, exactly.

    The pipeline is written and read on one connection that only the sender task uses, kept
    between batches (as the PostgreSQL writer keeps its own): redis-py's Pipeline object, with
    its pool checkout and release, cost ~85-100 us of CPU per batch of one, the connection's own
    send and read ~35 us (measured here). redis-py still connects it (URL, password, database,
    TLS), applies socket_timeout and drops it on any error, so the next batch reconnects.
    """

    def __init__(self) -> None:
        self._client: Any = None
        self._conn: Any = None  # the sender's own connection, see _pipeline
        self._queue: list[_Call] = []
        self._queued: dict[str, _Call] = {}  # the calls in _queue by key, while they can take more hits
        self._leases: dict[str, _Lease] = {}
        self._sender: asyncio.Task[None] | None = None
        self.round_trips = 0  # pipelines sent (tests read it)
        self.calls = 0  # EVALSHAs sent (tests read it)

    def _redis(self) -> Any:
        if self._client is None:
            import redis.asyncio as aioredis

            self._client = aioredis.Redis.from_url(
                conf.settings.REDIS_CONN_STRING,
                password=conf.settings.REDIS_PASSWORD or None,
                socket_timeout=1,
                socket_connect_timeout=1,
                client_name=CLIENT_NAME,
            )
        return self._client

    async def hit(self, limit: Limit, identity: str) -> Decision:
        if limit.limit <= 0 or conf.settings.RATE_LIMIT_DISABLED:
            return ALLOWED
        key = f"{limit.name}:{identity}"
        if conf.settings.REDIS_CONN_STRING:
            try:
                decided = self._redis_hit(conf.settings.RATE_LIMIT_KEY_PREFIX + key, limit)
                return decided if isinstance(decided, Decision) else await decided
            except Exception as exc:  # redis errors, timeouts: keep serving
                redis_failed(exc)
        return local_window().hit(key, limit.limit, limit.window)

    def _redis_hit(self, key: str, limit: Limit) -> Decision | asyncio.Future[Decision]:
        """The verdict at once for a hit counted ahead, else a future answered by _send_queued."""
        now = time.monotonic()
        lease = self._leases.get(key)
        if lease is None:
            if len(self._leases) >= _MAX_LEASES:
                self._leases.clear()
            lease = self._leases[key] = _Lease()
        elapsed = now - lease.since
        if elapsed > _AHEAD_SECONDS or lease.hits >= _AHEAD_MAX:
            # The key's rate, measured over _AHEAD_SECONDS or _AHEAD_MAX hits, whichever is first
            # (so a burst of a few hits in a millisecond is not taken for thousands a second).
            lease.rate = lease.hits / max(elapsed, 1e-6) if elapsed < 2 * _AHEAD_SECONDS else 0.0
            lease.since, lease.hits = now, 0
        lease.hits += 1
        if lease.left > 0 and now < lease.until:
            lease.left -= 1
            return Decision(True, limit.limit, lease.room + lease.left, 0.0)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decision] = loop.create_future()
        call = self._queued.get(key)
        if call is not None and len(call.waiters) < _CALL_MAX_HITS:
            call.waiters.append(future)  # counted in the same EVALSHA
            return future
        ahead = 0
        if not lease.ahead_sent and lease.rate * _AHEAD_SECONDS >= _HOT_HITS and lease.room >= _AHEAD_SHARE:
            ahead = min(int(lease.rate * _AHEAD_SECONDS), _AHEAD_MAX, lease.room // _AHEAD_SHARE)
            lease.ahead_sent = True
        lease.left = 0
        call = _Call(key, limit.limit, int(limit.window * 1000), [future], ahead)
        self._queue.append(call)
        self._queued[key] = call
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send_queued())
        return future

    async def _send_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:_PIPELINE_MAX], self._queue[_PIPELINE_MAX:]
            for call in batch:
                self._queued.pop(call.key, None)  # sent: later hits make a call of their own
            self.calls += len(batch)
            try:
                results = await self._run_scripts(
                    [(call.key, [call.window_ms, call.limit, unique_member(), len(call.waiters) + call.ahead]) for call in batch]
                )
            except Exception as exc:  # the connection failed: every hit of the batch falls back
                results = [exc] * len(batch)
            for call, result in zip(batch, results, strict=True):
                self._answer(call, result)

    def _answer(self, call: _Call, result: Any) -> None:
        """Each waiter in turn gets one of the hits Redis counted, or a refusal; the rest are
        kept for the key's next hits."""
        lease = self._leases.get(call.key)
        if lease is not None and call.ahead:
            lease.ahead_sent = False
        if isinstance(result, BaseException):
            for waiter in call.waiters:
                answer(waiter, result)
            return
        granted, count, wait_ms = (int(v) for v in result)
        room = max(call.limit - count, 0)
        for i, waiter in enumerate(call.waiters):
            if i < granted:
                answer(waiter, Decision(True, call.limit, room + granted - 1 - i, 0.0))
            else:
                answer(waiter, Decision(False, call.limit, 0, max(wait_ms, 0) / 1000))
        if lease is not None:
            now = time.monotonic()
            unused = lease.left if now < lease.until else 0  # from a call answered meanwhile
            lease.left = unused + max(granted - len(call.waiters), 0)
            lease.until = now + _AHEAD_SECONDS
            lease.room = room

    async def _run_scripts(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """EVALSHA each call; a Redis that lost its scripts (restarted, flushed) gets it again."""
        client = self._redis()
        results = await self._pipeline(client, calls)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            await client.script_load(SLIDING_WINDOW_LUA)
            for i, result in zip(missing, await self._pipeline(client, [calls[i] for i in missing]), strict=True):
                results[i] = result
        return results

    async def _pipeline(self, client: Any, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        kept = self._conn is not None and self._conn.is_connected
        try:
            return await self._send_and_read(client, calls)
        except RedisConnectionError:
            if not kept:
                raise
            # The kept connection was closed by the server meanwhile (a restart, its idle
            # timeout): once more, on a new one. (A timeout is not retried: Redis is slow or gone.)
            return await self._send_and_read(client, calls)

    async def _send_and_read(self, client: Any, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Send the EVALSHAs in one write and read their replies in order. A reply that is an
        error (NOSCRIPT) is that call's result; a connection error ends the batch (redis-py has
        closed the connection, so no reply is left to mismatch the next batch's)."""
        if self._conn is None:
            self._conn = await client.connection_pool.get_connection()
        conn = self._conn
        commands = [("EVALSHA", SLIDING_WINDOW_SHA, 1, key, *args) for key, args in calls]
        self.round_trips += 1
        await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
        results: list[Any] = []
        for _ in commands:
            try:
                results.append(await conn.read_response())
            except ResponseError as exc:
                results.append(exc)
        return results

    async def close(self) -> None:
        if self._sender is not None and not self._sender.done():
            await self._sender
        if self._conn is not None:
            await self._client.connection_pool.release(self._conn)
        if self._client is not None:
            await self._client.aclose()
        self._client = self._sender = self._conn = None


limiter = RelayLimiter()


async def check_key_rate(key_digest: str) -> None:
    """GLOBAL_RELAY_RATE_LIMIT per key (by digest, as the original keys it by the key's hash)."""
    if conf.settings.RATE_LIMIT_DISABLED or conf.settings.GLOBAL_RELAY_RATE_LIMIT <= 0:
        return
    decision = await limiter.hit(relay_limit(), key_digest)
    if not decision.allowed:
        metrics.rate_limited("relay")
        raise RateLimited(
            f"this API key sent more than {decision.limit} requests in {conf.settings.GLOBAL_RELAY_RATE_LIMIT_DURATION} s;"
            f" retry in {decision.headers()['Retry-After']} s",
            headers=decision.headers(),
        )


def channel_limit(channel: ChannelEntry) -> Limit:
    own = channel.config.get("rate_limit")
    value = own if isinstance(own, int) and not isinstance(own, bool) and own > 0 else conf.settings.CHANNEL_RATE_LIMIT_DEFAULT
    return Limit("channel", value, conf.settings.GLOBAL_CHANNEL_RATE_LIMIT_DURATION)


async def choose_within_limits(ctx: Any, choose: Callable[[Any], ChannelEntry]) -> ChannelEntry:
    """`choose(ctx)`, passing over channels that used up their GLOBAL_CHANNEL_RATE_LIMIT.

    When every candidate is over its limit the caller gets a 429 with the soonest retry time.
    """
    if not conf.settings.CHANNEL_RATE_LIMIT_ENABLED or conf.settings.RATE_LIMIT_DISABLED:
        return choose(ctx)
    skipped: list[int] = []
    soonest: Decision | None = None
    try:
        while True:
            try:
                channel = choose(ctx)
            except NoChannel:
                if soonest is None:
                    raise
                channel = None
            if channel is None or channel.id in skipped:  # nothing left, or a pinned channel
                assert soonest is not None
                metrics.rate_limited("channel")
                raise RateLimited(
                    f"every channel for model {ctx.model} is at its request rate limit;"
                    f" retry in {soonest.headers()['Retry-After']} s",
                    headers=soonest.headers(),
                )
            decision = await limiter.hit(channel_limit(channel), str(channel.id))
            if decision.allowed:
                return channel
            if soonest is None or decision.reset < soonest.reset:
                soonest = decision
            skipped.append(channel.id)
            ctx.tried.add(channel.id)
    finally:
        # Skipped channels were not tried: a retry may come back to them (and ask again).
        ctx.tried.difference_update(skipped)


def _trusted_header() -> str:
    return conf.settings.TRUSTED_PROXY_HEADER.lower()


def scope_client_ip(headers: dict[str, str], scope: dict[str, Any]) -> str | None:
    """The caller's address: the socket peer, or TRUSTED_PROXY_HEADER when configured."""
    peer = scope.get("client")
    address = peer[0] if peer else None
    if not conf.settings.TRUSTED_PROXY_HEADER:
        return address
    return client_ip(headers.get(_trusted_header()), address)
