"""Rate limits on the hot relay path: per key (GLOBAL_RELAY_RATE_LIMIT) and per channel.

Without Redis: the in-process sliding window of oneapi_site.ratelimit (a dict lookup and a
deque operation, no I/O). With Redis: one EVALSHA on the relay's own asyncio client, so every
replica shares the counts. Django's cache is not used here: its sync client would block the
event loop. If Redis fails, counting falls back to this process until it is back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings

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
from .errors import NoChannel, RelayError
from .snapshot import ChannelEntry


class RateLimited(RelayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class RelayLimiter:
    def __init__(self) -> None:
        self._client: Any = None
        self._script: Any = None

    def _redis_script(self) -> Any:
        if self._script is None:
            import redis.asyncio as aioredis

            self._client = aioredis.Redis.from_url(
                settings.REDIS_CONN_STRING,
                password=settings.REDIS_PASSWORD or None,
                socket_timeout=1,
                socket_connect_timeout=1,
            )
            self._script = self._client.register_script(SLIDING_WINDOW_LUA)
        return self._script

    async def hit(self, limit: Limit, identity: str) -> Decision:
        if limit.limit <= 0 or settings.RATE_LIMIT_DISABLED:
            return ALLOWED
        key = f"{limit.name}:{identity}"
        if settings.REDIS_CONN_STRING:
            try:
                result = await self._redis_script()(
                    keys=[settings.RATE_LIMIT_KEY_PREFIX + key], args=[int(limit.window * 1000), limit.limit, unique_member()]
                )
                return decision_from_redis(result, limit.limit)
            except Exception as exc:  # redis errors, timeouts: keep serving
                redis_failed(exc)
        return local_window().hit(key, limit.limit, limit.window)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._client = self._script = None


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
