"""The relay's Redis limiter (relay/ratelimit.py): the hits of one loop turn share a pipeline,
each keeps its own verdict, and a Redis that lost its scripts or is down does not fail a request."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from oneapi_site.ratelimit import SLIDING_WINDOW_LUA, Limit
from relay.ratelimit import CLIENT_NAME, RelayLimiter

pytestmark = pytest.mark.skipif(
    not settings.REDIS_CONN_STRING,
    reason="REDIS_CONN_STRING is not set: the Redis limiter is tested on the PostgreSQL + Redis run",
)


@pytest.fixture(autouse=True)
def limits_on(settings):  # type: ignore[no-untyped-def]
    settings.RATE_LIMIT_DISABLED = False  # the test settings turn limits off


def _hits(limit: Limit, identity: str, count: int, limiter: RelayLimiter | None = None) -> list[tuple[bool, int]]:
    async def main(limiter: RelayLimiter) -> list[tuple[bool, int]]:
        try:
            decisions = await asyncio.gather(*(limiter.hit(limit, identity) for _ in range(count)))
        finally:
            await limiter.close()
        return [(d.allowed, d.remaining) for d in decisions]

    return asyncio.run(main(limiter or RelayLimiter()))


def test_concurrent_hits_share_a_round_trip_and_are_counted_one_by_one() -> None:
    limiter = RelayLimiter()
    decisions = _hits(Limit("test", 20, 60), uuid.uuid4().hex, 30, limiter)
    assert limiter.round_trips == 1  # all 30 were queued in the same loop turn
    assert sum(allowed for allowed, _ in decisions) == 20
    # Each hit got its own answer from the window: remaining 19, 18, ... 0, then refusals.
    assert sorted(remaining for allowed, remaining in decisions if allowed) == list(range(20))


def test_a_redis_without_the_script_gets_it_again() -> None:
    redis.Redis.from_url(settings.REDIS_CONN_STRING, password=settings.REDIS_PASSWORD or None).script_flush()
    limiter = RelayLimiter()
    decisions = _hits(Limit("test", 5, 60), uuid.uuid4().hex, 8, limiter)
    assert limiter.round_trips == 2  # NOSCRIPT, then SCRIPT LOAD and the same calls again
    assert [allowed for allowed, _ in decisions].count(True) == 5


def test_an_unreachable_redis_falls_back_to_this_process() -> None:
    with override_settings(REDIS_CONN_STRING="redis://127.0.0.1:1/0"):
        decisions = _hits(Limit("test", 3, 60), uuid.uuid4().hex, 5)
    assert [allowed for allowed, _ in decisions] == [True, True, True, False, False]


def _limiter_connection_ids() -> set[int]:
    clients = redis.Redis.from_url(settings.REDIS_CONN_STRING, password=settings.REDIS_PASSWORD or None).client_list()
    return {int(c["id"]) for c in clients if c.get("name") == CLIENT_NAME}


def test_batches_share_one_kept_connection_and_survive_its_loss() -> None:
    """One connection serves batch after batch; one the server closed meanwhile is replaced
    for the next batch without falling back to counting in this process."""
    identity, limit = uuid.uuid4().hex, Limit("test", 100, 60)
    admin = redis.Redis.from_url(settings.REDIS_CONN_STRING, password=settings.REDIS_PASSWORD or None)
    admin.script_load(SLIDING_WINDOW_LUA)
    others = _limiter_connection_ids()  # other limiters' (gateways of other tests), if any

    async def main() -> tuple[list[int], set[int], set[int]]:
        limiter = RelayLimiter()
        try:
            remaining = [(await limiter.hit(limit, identity)).remaining for _ in range(3)]
            first = _limiter_connection_ids() - others
            admin.client_kill_filter(_id=next(iter(first)))
            remaining += [(await limiter.hit(limit, identity)).remaining for _ in range(3)]
            return remaining, first, _limiter_connection_ids() - others
        finally:
            await limiter.close()

    remaining, first, after = asyncio.run(main())
    assert len(first) == 1  # three batches, one connection
    assert len(after) == 1 and after != first  # the killed one was replaced
    assert remaining == [99, 98, 97, 96, 95, 94]  # every hit counted in Redis, none in this process
    assert _limiter_connection_ids() - others == set()  # close() closed it
