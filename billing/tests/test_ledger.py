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
