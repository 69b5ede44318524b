"""The ledger's raw statements on the real database (SQLite, PostgreSQL in CI's second run, or MySQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.conf import settings

from accounts.models import ApiKey
from billing.ledger import Hold, HoldOutcome, Ledger, Settlement
from billing.models import ChargeStatus, ConsumeLog, LogType, RequestCharge
from relay.db import Database, PostgresDatabase, ThreadedDjangoDatabase, _postgres_conninfo
from relay.db_sqlite import SQLiteDatabase

pytestmark = pytest.mark.django_db(transaction=True)


def run(body: Any) -> Any:
    """Run `body(ledger)` with a fresh connection on this test's event loop."""

    async def main() -> Any:
        db = settings.DATABASES["default"]
        database: Database
        if db["ENGINE"].endswith("sqlite3"):
            database = SQLiteDatabase(str(db["NAME"]), 5000)
        elif db["ENGINE"].endswith("postgresql"):
            database = PostgresDatabase(_postgres_conninfo(db), 4)
        else:  # MySQL / MariaDB: the portable statements through Django's connection
            database = ThreadedDjangoDatabase(db["ENGINE"].rsplit(".", 1)[-1])
        try:
            return await body(Ledger(database))
        finally:
            await database.close()

    return asyncio.run(main())


@pytest.fixture
def account(make_user, make_key):  # type: ignore[no-untyped-def]
    user = make_user(quota=10_000)
    key, _ = make_key(user, remain_quota=5_000)
    return user, key


def state(user, key) -> tuple[int, int, int, int, int]:  # type: ignore[no-untyped-def]
    user.refresh_from_db()
    key.refresh_from_db()
    return user.quota, user.used_quota, user.request_count, key.remain_quota, key.used_quota


def settlement(user, key, request_id: str, quota: int, **kwargs: Any) -> Settlement:  # type: ignore[no-untyped-def]
    return Settlement(request_id=request_id, user_id=user.pk, key_id=key.pk, channel_id=None, quota=quota, model_name="m", **kwargs)


def test_hold_then_settle_applies_the_difference_once(account):  # type: ignore[no-untyped-def]
    user, key = account

    async def body(ledger: Ledger) -> list[object]:
        held = await ledger.hold(Hold("req-1", user.pk, key.pk, 1_000))
        first = await ledger.settle(settlement(user, key, "req-1", 300, prompt_tokens=10, completion_tokens=5))
        again = await ledger.settle(settlement(user, key, "req-1", 300))
        late_refund = await ledger.settle(settlement(user, key, "req-1", 0, refund=True))
        return [held, first, again, late_refund]

    assert run(body) == [HoldOutcome.OK, True, False, False]
    assert state(user, key) == (10_000 - 300, 300, 1, 5_000 - 300, 300)
    charge = RequestCharge.objects.get(request_id="req-1")
    assert (charge.status, charge.held_quota, charge.quota) == (ChargeStatus.SETTLED, 1_000, 300)
    assert list(ConsumeLog.objects.values_list("type", "quota", "prompt_tokens")) == [(LogType.CONSUME, 300, 10)]


def test_refund_returns_the_hold_and_logs_an_error_row(account):  # type: ignore[no-untyped-def]
    user, key = account

    async def body(ledger: Ledger) -> None:
        assert await ledger.hold(Hold("req-2", user.pk, key.pk, 2_000)) is HoldOutcome.OK
        assert await ledger.settle(settlement(user, key, "req-2", 0, refund=True, status_code=502, content="boom"))

    run(body)
    assert state(user, key) == (10_000, 0, 0, 5_000, 0)
    assert RequestCharge.objects.get(request_id="req-2").status == ChargeStatus.REFUNDED
    assert ConsumeLog.objects.get().type == LogType.ERROR


def test_settling_more_than_was_held_charges_the_exact_cost(account):  # type: ignore[no-untyped-def]
    user, key = account

    async def body(ledger: Ledger) -> None:
        await ledger.hold(Hold("req-3", user.pk, key.pk, 100))
        await ledger.settle(settlement(user, key, "req-3", 250))

    run(body)
    assert state(user, key) == (10_000 - 250, 250, 1, 5_000 - 250, 250)


@pytest.mark.parametrize(
    "hold_quota, key_change, expected",
    [
        (6_000, {}, HoldOutcome.KEY_REFUSED),  # more than the key has
        (100, {"status": 2}, HoldOutcome.KEY_REFUSED),  # disabled key
        (100, {"unlimited_quota": True, "remain_quota": 0}, HoldOutcome.OK),
    ],
)
def test_hold_conditions_on_the_key(account, hold_quota, key_change, expected):  # type: ignore[no-untyped-def]
    user, key = account
    ApiKey.objects.filter(pk=key.pk).update(**key_change)
    before = state(user, key)
    outcome = run(lambda ledger: ledger.hold(Hold("req-4", user.pk, key.pk, hold_quota)))
    assert outcome is expected
    if expected is HoldOutcome.KEY_REFUSED:
        assert state(user, key) == before
        assert not RequestCharge.objects.exists()
    else:
        assert state(user, key)[0] == 10_000 - hold_quota and state(user, key)[3] == 0


def test_user_refusal_gives_the_key_its_quota_back(account):  # type: ignore[no-untyped-def]
    user, key = account
    user.quota = 50
    user.save()
    outcome = run(lambda ledger: ledger.hold(Hold("req-5", user.pk, key.pk, 100)))
    assert outcome is HoldOutcome.USER_REFUSED
    assert state(user, key) == (50, 0, 0, 5_000, 0)
    assert not RequestCharge.objects.exists()


def test_concurrent_holds_never_overspend(account):  # type: ignore[no-untyped-def]
    user, key = account

    async def body(ledger: Ledger) -> list[HoldOutcome]:
        return list(await asyncio.gather(*(ledger.hold(Hold(f"c-{i}", user.pk, key.pk, 700)) for i in range(20))))

    outcomes = run(body)
    assert outcomes.count(HoldOutcome.OK) == 5_000 // 700
    assert state(user, key)[3] == 5_000 - 7 * 700


def _is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def test_holds_queued_together_grant_in_order_while_each_total_fits(make_user, make_key):  # type: ignore[no-untyped-def]
    """One batch: a key that can cover two of three holds, a disabled key, and a second key of a
    user who can cover only part of what her keys ask. Every backend decides the same."""
    rich = make_user(quota=100_000)
    rich_key, _ = make_key(rich, remain_quota=1_000)
    disabled_key, _ = make_key(rich, remain_quota=1_000)
    ApiKey.objects.filter(pk=disabled_key.pk).update(status=2)
    poor = make_user(quota=500)
    poor_a, _ = make_key(poor, remain_quota=1_000)
    poor_b, _ = make_key(poor)  # unlimited key: only the user's quota limits it
    holds = [
        Hold("a1", rich.pk, rich_key.pk, 400),
        Hold("p1", poor.pk, poor_a.pk, 300),
        Hold("a2", rich.pk, rich_key.pk, 400),
        Hold("d1", rich.pk, disabled_key.pk, 10),
        Hold("p2", poor.pk, poor_b.pk, 300),  # the user's running total would be 600 > 500
        Hold("a3", rich.pk, rich_key.pk, 400),  # the key's running total would be 1,200 > 1,000
        # Not asserted: granted one at a time (SQLite: 300 + 100 fits), refused in one statement
        # (PostgreSQL grants a user's holds while the running total fits: 700 does not).
        Hold("p3", poor.pk, poor_b.pk, 100),
    ]

    async def body(ledger: Ledger) -> tuple[list[HoldOutcome], Any]:
        outcomes = list(await asyncio.gather(*(ledger.hold(h) for h in holds)))
        return outcomes, getattr(ledger.db, "lone_writes", None)

    outcomes, lone_writes = run(body)
    by_id = dict(zip((h.request_id for h in holds), outcomes, strict=True))
    assert [by_id[r] for r in ("a1", "a2", "a3")] == [HoldOutcome.OK, HoldOutcome.OK, HoldOutcome.KEY_REFUSED]
    assert by_id["d1"] is HoldOutcome.KEY_REFUSED
    assert by_id["p1"] is HoldOutcome.OK and by_id["p2"] is HoldOutcome.USER_REFUSED
    granted = {h.request_id for h, o in zip(holds, outcomes, strict=True) if o is HoldOutcome.OK}
    assert set(RequestCharge.objects.values_list("request_id", flat=True)) == granted
    # Debited exactly by what was granted, each once, never below zero.
    rich.refresh_from_db()
    poor.refresh_from_db()
    rich_key.refresh_from_db()
    poor_a.refresh_from_db()
    assert (rich.quota, rich_key.remain_quota) == (100_000 - 800, 1_000 - 800)
    held_poor = sum(h.quota for h in holds if h.user_id == poor.pk and h.request_id in granted)
    assert poor.quota == 500 - held_poor >= 0
    assert poor_a.remain_quota == 1_000 - 300
    if _is_postgres():
        assert lone_writes == 1  # all seven holds were one statement, one round trip


def test_settles_queued_together_apply_the_sums_and_one_settle_per_request(make_user, make_key, db):  # type: ignore[no-untyped-def]
    from channels_app.models import Channel

    user = make_user(quota=100_000)
    key_a, _ = make_key(user, remain_quota=10_000, name="a")
    key_b, _ = make_key(user, remain_quota=10_000, name="b")
    channel = Channel.objects.create(type=1, name="c", key="sk", model_names="m", groups="default")
    requests = [(f"s{i}", key_a if i % 2 else key_b) for i in range(10)]

    async def hold_all(ledger: Ledger) -> None:
        for request_id, key in requests:
            assert await ledger.hold(Hold(request_id, user.pk, key.pk, 100)) is HoldOutcome.OK

    run(hold_all)

    def settle(request_id: str, key: ApiKey, quota: int, **kwargs: Any) -> Settlement:
        return Settlement(request_id=request_id, user_id=user.pk, key_id=key.pk, channel_id=channel.pk, quota=quota,
                          model_name="m", prompt_tokens=quota, content=kwargs.pop("content", ""), **kwargs)  # fmt: skip

    async def settle_all(ledger: Ledger) -> list[bool]:
        settles = [settle(r, k, 10 * i) for i, (r, k) in enumerate(requests[:8])]
        settles.insert(3, settle("s1", key_a, 999))  # the same request twice in one batch
        settles.append(settle("s8", key_b, 0, refund=True, status_code=502, content="upstream failed"))
        settles.append(settle("s9", key_a, 70, write_log=False))
        settles.append(settle("nobody", key_a, 50))  # no such charge
        return list(await asyncio.gather(*(ledger.settle(s) for s in settles)))

    results = run(settle_all)
    assert results.count(True) == 10 and results[-1] is False
    assert [results[1], results[3]].count(True) == 1  # s1: exactly one of its two settles
    s1 = RequestCharge.objects.get(request_id="s1").quota
    assert s1 in (10, 999)
    costs = {f"s{i}": 10 * i for i in range(8)} | {"s1": s1, "s8": 0, "s9": 70}
    user.refresh_from_db()
    key_a.refresh_from_db()
    key_b.refresh_from_db()
    channel.refresh_from_db()
    total = sum(costs.values())
    assert (user.quota, user.used_quota, user.request_count) == (100_000 - total, total, 9)  # the refund is not a request
    on_a = sum(q for r, q in costs.items() if int(r[1:]) % 2)
    assert (key_a.remain_quota, key_a.used_quota) == (10_000 - on_a, on_a)
    assert (key_b.remain_quota, key_b.used_quota) == (10_000 - (total - on_a), total - on_a)
    assert channel.used_quota == total
    logs = {row[0]: row[1:] for row in ConsumeLog.objects.values_list("request_id", "type", "quota", "prompt_tokens", "content")}
    assert set(logs) == {f"s{i}" for i in range(9)}  # s9 asked for no log row
    assert logs["s8"] == (LogType.ERROR, 0, 0, "upstream failed")
    assert logs["s1"] == (LogType.CONSUME, s1, s1, "")
    assert all(c.status != ChargeStatus.HELD for c in RequestCharge.objects.all())


@pytest.mark.skipif(not _is_postgres(), reason="PostgreSQL only: a NUL is valid text elsewhere")
def test_a_settle_that_fails_fails_alone_and_the_others_of_its_batch_are_applied(account):  # type: ignore[no-untyped-def]
    user, key = account

    async def body(ledger: Ledger) -> list[Any]:
        for i in range(4):
            await ledger.hold(Hold(f"f{i}", user.pk, key.pk, 100))
        settles = [settlement(user, key, f"f{i}", 10, content="nul \x00 byte" if i == 2 else "") for i in range(4)]
        return list(await asyncio.gather(*(ledger.settle(s) for s in settles), return_exceptions=True))

    results = run(body)
    assert results[:2] == [True, True] and results[3] is True
    assert "NUL" in str(results[2]) or "0x00" in str(results[2])
    assert RequestCharge.objects.get(request_id="f2").status == ChargeStatus.HELD  # the stale-hold task refunds it
    assert state(user, key) == (10_000 - 30 - 100, 30, 3, 5_000 - 30 - 100, 30)
