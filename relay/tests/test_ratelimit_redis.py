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


def test_hits_of_one_key_in_a_loop_turn_are_one_call() -> None:
    limiter = RelayLimiter()
    decisions = _hits(Limit("test", 1_000_000, 60), uuid.uuid4().hex, 25, limiter)
    assert limiter.calls == 1 and all(allowed for allowed, _ in decisions)
    assert sorted(remaining for _, remaining in decisions) == list(range(1_000_000 - 25, 1_000_000))


def _window_size(key: str) -> int:
    admin = redis.Redis.from_url(settings.REDIS_CONN_STRING, password=settings.REDIS_PASSWORD or None)
    return int(admin.zcard(settings.RATE_LIMIT_KEY_PREFIX + key))


def test_a_hot_key_is_counted_ahead_and_asks_redis_rarely() -> None:
    """One hit after another, as fast as the loop goes: after the first few calls each one
    counts _AHEAD_MAX hits ahead; every allowed hit is in Redis before it is allowed."""
    identity, limit = uuid.uuid4().hex, Limit("test", 1_000_000, 60)

    async def main() -> tuple[int, list[int]]:
        limiter = RelayLimiter()
        try:
            remaining = [(await limiter.hit(limit, identity)).remaining for _ in range(2_000)]
        finally:
            await limiter.close()
        return limiter.calls, remaining

    calls, remaining = asyncio.run(main())
    assert calls < 2_000 // 16  # one call per hit would be 2,000
    assert len(set(remaining)) == 2_000 and max(remaining) == 999_999  # each hit its own count
    counted = _window_size(f"test:{identity}")
    assert 2_000 <= counted <= 2_000 + 64  # at most one call's hits ahead are left unused


def test_counting_ahead_never_lets_more_than_the_limit_through_across_processes() -> None:
    """Three limiters (three workers or replicas) hammer one key with a limit of 1,000: together
    they allow at most 1,000, and the hits counted ahead but not used are few."""
    identity, limit = uuid.uuid4().hex, Limit("test", 1_000, 60)

    async def worker(limiter: RelayLimiter) -> int:
        allowed = 0
        try:
            for _ in range(60):
                decisions = await asyncio.gather(*(limiter.hit(limit, identity) for _ in range(8)))
                allowed += sum(d.allowed for d in decisions)
        finally:
            await limiter.close()
        return allowed

    async def main() -> list[int]:
        return list(await asyncio.gather(*(worker(RelayLimiter()) for _ in range(3))))

    allowed = asyncio.run(main())
    assert sum(allowed) <= 1_000 and _window_size(f"test:{identity}") == 1_000
    assert sum(allowed) >= 1_000 - 3 * (1_000 // 64)  # what each could hold unused at the end


def test_a_window_with_little_room_is_counted_hit_by_hit() -> None:
    """A key sending fast against a limit under _AHEAD_SHARE hits of room: nothing is counted
    ahead, so it gets exactly its limit."""
    identity, limit = uuid.uuid4().hex, Limit("test", 50, 60)

    async def main() -> list[bool]:
        limiter = RelayLimiter()
        try:
            return [(await limiter.hit(limit, identity)).allowed for _ in range(80)]
        finally:
            await limiter.close()

    assert asyncio.run(main()) == [True] * 50 + [False] * 30
    assert _window_size(f"test:{identity}") == 50


def test_what_is_counted_ahead_follows_the_keys_rate() -> None:
    """A key sending ~400 a second, in bursts of 8: hits are counted ahead by its measured rate
    (a burst is not taken for its instantaneous rate), so few are left unused at the end."""
    identity, limit = uuid.uuid4().hex, Limit("test", 1_000_000, 60)

    async def main() -> int:
        limiter = RelayLimiter()
        try:
            for _ in range(40):
                await asyncio.gather(*(limiter.hit(limit, identity) for _ in range(8)))
                await asyncio.sleep(0.02)
        finally:
            await limiter.close()
        return limiter.calls

    calls = asyncio.run(main())
    assert calls < 40  # counted ahead: fewer calls than bursts
    assert 320 <= _window_size(f"test:{identity}") <= 320 + 64  # about 0.1 s of its rate (~40) unused
