"""Rate limits on the hot relay path: per key (GLOBAL_RELAY_RATE_LIMIT) and per channel.

Without Redis: the in-process sliding window of oneapi_site.ratelimit (a dict lookup and a
deque operation, no I/O). With Redis: an EVALSHA on the relay's own asyncio client (the hits of
one loop turn pipelined together), so every replica shares the counts. Django's cache is not used
here: its sync client would block the event loop. If Redis fails, counting falls back to this
process until it is back.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from oneapi_site.ratelimit import (
    ALLOWED,
    SLIDING_WINDOW_LUA,
    Decision,
    Limit,
    client_ip,
    decision_from_redis,
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


_PIPELINE_MAX = 128  # hits per round trip
CLIENT_NAME = "oneapi-relay-limiter"  # how the relay's connections appear in Redis' CLIENT LIST


class RelayLimiter:
    """Counts relay hits in the shared Redis window, or in this process without Redis.

    With Redis, the hits queued during one turn of the event loop go out as one pipeline of
    EVALSHAs: redis-py's own cost per command falls from ~55 us alone to ~15-25 us in batches
    of 4-16 (measured here), and one round trip serves them all. Each hit keeps its own result.

    The pipeline is written and read on one connection that only the sender task uses, kept
    between batches (as the PostgreSQL writer keeps its own): redis-py's Pipeline object, with
    its pool checkout and release, cost ~85-100 us of CPU per batch of one, the connection's own
    send and read ~35 us (measured here). redis-py still connects it (URL, password, database,
    TLS), applies socket_timeout and drops it on any error, so the next batch reconnects.
    """

    def __init__(self) -> None:
        self._client: Any = None
        self._conn: Any = None  # the sender's own connection, see _pipeline
        self._queue: list[tuple[str, list[Any], asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None
        self.round_trips = 0  # pipelines sent (tests read it)

    def _redis(self) -> Any:
        if self._client is None:
            import redis.asyncio as aioredis

            self._client = aioredis.Redis.from_url(
                settings.REDIS_CONN_STRING,
                password=settings.REDIS_PASSWORD or None,
                socket_timeout=1,
                socket_connect_timeout=1,
                client_name=CLIENT_NAME,
            )
        return self._client

    async def hit(self, limit: Limit, identity: str) -> Decision:
        if limit.limit <= 0 or settings.RATE_LIMIT_DISABLED:
            return ALLOWED
        key = f"{limit.name}:{identity}"
        if settings.REDIS_CONN_STRING:
            try:
                args = [int(limit.window * 1000), limit.limit, unique_member()]
                return decision_from_redis(await self._queued(settings.RATE_LIMIT_KEY_PREFIX + key, args), limit.limit)
            except Exception as exc:  # redis errors, timeouts: keep serving
                redis_failed(exc)
        return local_window().hit(key, limit.limit, limit.window)

    async def _queued(self, key: str, args: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((key, args, future))
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send_queued())
        return await future

    async def _send_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:_PIPELINE_MAX], self._queue[_PIPELINE_MAX:]
            try:
                results = await self._run_scripts([(key, args) for key, args, _ in batch])
            except Exception as exc:  # the connection failed: every hit of the batch falls back
                results = [exc] * len(batch)
            for (_, _, future), result in zip(batch, results, strict=True):
                answer(future, result)

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
    if settings.RATE_LIMIT_DISABLED or settings.GLOBAL_RELAY_RATE_LIMIT <= 0:
        return
    decision = await limiter.hit(relay_limit(), key_digest)
    if not decision.allowed:
        metrics.rate_limited("relay")
        raise RateLimited(
            f"this API key sent more than {decision.limit} requests in {settings.GLOBAL_RELAY_RATE_LIMIT_DURATION} s;"
            f" retry in {decision.headers()['Retry-After']} s",
            headers=decision.headers(),
        )


def channel_limit(channel: ChannelEntry) -> Limit:
    own = channel.config.get("rate_limit")
    value = own if isinstance(own, int) and not isinstance(own, bool) and own > 0 else settings.CHANNEL_RATE_LIMIT_DEFAULT
    return Limit("channel", value, settings.GLOBAL_CHANNEL_RATE_LIMIT_DURATION)


async def choose_within_limits(ctx: Any, choose: Callable[[Any], ChannelEntry]) -> ChannelEntry:
    """`choose(ctx)`, passing over channels that used up their GLOBAL_CHANNEL_RATE_LIMIT.

    When every candidate is over its limit the caller gets a 429 with the soonest retry time.
    """
    if not settings.CHANNEL_RATE_LIMIT_ENABLED or settings.RATE_LIMIT_DISABLED:
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
    return settings.TRUSTED_PROXY_HEADER.lower()


def scope_client_ip(headers: dict[str, str], scope: dict[str, Any]) -> str | None:
    """The caller's address: the socket peer, or TRUSTED_PROXY_HEADER when configured."""
    peer = scope.get("client")
    address = peer[0] if peer else None
    if not settings.TRUSTED_PROXY_HEADER:
        return address
    return client_ip(headers.get(_trusted_header()), address)
