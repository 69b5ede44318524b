"""Prepared statements sent straight over libpq (relay/pg_wire.py), on the real PostgreSQL server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from django.conf import settings

from billing.ledger import Hold, HoldOutcome, Ledger, Settlement
from billing.models import ChargeStatus, ConsumeLog, RequestCharge
from relay import pg_wire
from relay.db import PostgresDatabase, _postgres_conninfo

postgresql_only = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="PostgreSQL only: the CI's PostgreSQL + Redis run covers it",
)
pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = (("t", "text"), ("big", "bigint"), ("small", "smallint"), ("i", "integer"), ("ok", "boolean"), ("at", "timestamptz"))
# The timestamp comes back as microseconds since the epoch (pg_wire decodes integers, not times).
ECHO = pg_wire.prepared(
    "test_echo", "SELECT {t}, {big}, {small}, {i}, {ok}, (extract(epoch FROM {at}) * 1000000)::bigint, {t} IS NULL", FIELDS
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
VALUES = [
    ('say "hi"\n\\ \'quoted\' {a,b} ünï 💡', -(2**62), -7, 2**31 - 1, True, datetime(2026, 12, 7, 3, 4, 5, 678901, tzinfo=UTC)),
    ("", 0, 0, 0, False, datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
    (None, None, None, None, None, None),
]


def _echoed(values: tuple[Any, ...]) -> tuple[Any, ...]:
    at = values[5]
    return (*values[:5], None if at is None else (at - EPOCH) // timedelta(microseconds=1), values[0] is None)


def _connect() -> Any:
    return psycopg.AsyncConnection.connect(_postgres_conninfo(settings.DATABASES["default"]), autocommit=True)


@postgresql_only
def test_values_reach_postgresql_and_come_back_as_sent() -> None:
    """The same statement alone (a lone write) and in a pipelined batch gives the same rows, and
    both are the values sent."""

    async def main() -> tuple[list[Any], list[Any]]:
        async with await _connect() as conn:
            wire = pg_wire.Wire(conn)
            alone = [(await wire.execute(ECHO, values))[0] for values in VALUES]
            batch = [rows[0] for rows in await wire.run_batch([(ECHO, values) for values in VALUES])]
            wire.unwatch()
            return alone, batch

    alone, batch = asyncio.run(main())
    expected = [_echoed(values) for values in VALUES]
    assert alone == batch == expected


COUNT = pg_wire.prepared("test_count", "INSERT INTO test_wire_rows VALUES ({n}) RETURNING n", (("n", "integer"),))
DIVIDE = pg_wire.prepared("test_divide", "SELECT 100 / {n}", (("n", "integer"),))
ROWS = pg_wire.Prepared(b"test_rows", "SELECT count(*) FROM test_wire_rows", ())


@postgresql_only
def test_a_batch_is_one_transaction_its_first_error_rolls_back_the_whole_and_is_raised() -> None:
    async def main() -> tuple[Exception, list[Any], list[Any], bool]:
        async with await _connect() as conn:
            await conn.execute("CREATE TEMP TABLE test_wire_rows (n int)")
            wire = pg_wire.Wire(conn)
            with pytest.raises(psycopg.errors.DivisionByZero) as failed:
                # ROWS comes after the error: the server skips its prepare too.
                await wire.run_batch([(COUNT, (1,)), (DIVIDE, (0,)), (COUNT, (2,)), (ROWS, ())])
            after_failure = await wire.run_batch([(ROWS, ()), (COUNT, (3,)), (DIVIDE, (4,))])
            rows = await wire.execute(ROWS, ())
            wire.unwatch()
            return failed.value, after_failure, rows, conn.closed

    failed, after_failure, rows, closed = asyncio.run(main())
    assert "division by zero" in str(failed)
    assert after_failure == [[(0,)], [(3,)], [(25,)]]  # nothing of the first batch was committed
    assert rows == [(1,)] and not closed


@postgresql_only
def test_a_text_with_a_nul_is_refused_before_sending_and_the_connection_stays_usable() -> None:
    async def main() -> tuple[Exception, list[Any], bool]:
        async with await _connect() as conn:
            wire = pg_wire.Wire(conn)
            with pytest.raises(psycopg.DataError) as refused:
                await wire.execute(ECHO, ("a\x00b", 1, 1, 1, True, None))  # libpq would cut it at the NUL
            rows = await wire.execute(ECHO, ("ab", 1, 1, 1, True, None))
            wire.unwatch()
            return refused.value, rows, conn.closed

    refused, rows, closed = asyncio.run(main())
    assert "NUL" in str(refused)
    assert rows[0][0] == "ab" and not closed


@postgresql_only
def test_a_statement_error_is_raised_as_its_class_and_the_connection_stays_usable() -> None:
    divide = pg_wire.prepared("test_divide", "SELECT 100 / {n}", (("n", "integer"),))

    async def main() -> tuple[list[Any], bool]:
        async with await _connect() as conn:
            wire = pg_wire.Wire(conn)
            with pytest.raises(psycopg.errors.DivisionByZero):
                await wire.execute(divide, (0,))
            rows = await wire.execute(divide, (4,))
            wire.unwatch()
            return rows, conn.closed

    assert asyncio.run(main()) == ([(25,)], False)


@postgresql_only
def test_a_statement_deallocated_behind_its_back_is_prepared_again() -> None:
    async def main() -> list[Any]:
        async with await _connect() as conn:
            wire = pg_wire.Wire(conn)
            await wire.execute(ECHO, VALUES[1])
            wire.unwatch()
            await conn.execute("DEALLOCATE ALL")  # what a pooler's reset (DISCARD ALL) does
            rows = await wire.execute(ECHO, VALUES[1])
            wire.unwatch()
            return rows

    assert asyncio.run(main()) == [_echoed(VALUES[1])]


@postgresql_only
def test_a_cancelled_exchange_closes_the_connection() -> None:
    sleep = pg_wire.prepared("test_sleep", "SELECT pg_sleep({s})", (("s", "integer"),))

    async def main() -> bool:
        conn = await _connect()
        task = asyncio.ensure_future(pg_wire.Wire(conn).execute(sleep, (5,)))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return conn.closed  # left mid-exchange: nobody may send on it again

    assert asyncio.run(main()) is True


@postgresql_only
def test_a_connection_the_server_ends_between_statements_is_seen_closed_and_unwatched() -> None:
    """Its socket stays watched between statements: the server's goodbye is read there, so the
    loop does not keep reporting a readable socket, and the writer takes another connection."""

    async def main() -> tuple[bool, bool, int]:
        conn = await _connect()
        wire = pg_wire.Wire(conn)
        await wire.execute(ECHO, VALUES[1])
        async with await _connect() as other:
            await other.execute("SELECT pg_terminate_backend(%s)", (conn.pgconn.backend_pid,))
        loop = asyncio.get_running_loop()
        turns = 0
        deadline = loop.time() + 5
        while not conn.closed and loop.time() < deadline:
            await asyncio.sleep(0.01)
            turns += 1
        watched = wire._loop is not None
        await conn.close()
        return conn.closed, watched, turns

    closed, watched, turns = asyncio.run(main())
    assert closed and not watched and turns < 500


@postgresql_only
def test_the_ledgers_writes_go_by_name_alone_and_in_batches(make_user, make_key) -> None:  # type: ignore[no-untyped-def]
    user = make_user(quota=10_000)
    key, _ = make_key(user, remain_quota=5_000)

    def settlement(request_id: str, quota: int) -> Settlement:
        return Settlement(request_id=request_id, user_id=user.pk, key_id=key.pk, channel_id=None, quota=quota, model_name="m")

    async def main() -> tuple[list[Any], list[str], int, int]:
        db = PostgresDatabase(_postgres_conninfo(settings.DATABASES["default"]), 4)
        ledger = Ledger(db)
        try:
            results: list[Any] = [await ledger.hold(Hold("w1", user.pk, key.pk, 100))]  # alone: by name
            results.append(await ledger.settle(settlement("w1", 30)))
            lone = db.lone_writes
            # A hold and a settle queued together: one instance of each kind, so each kind's
            # statement for one row, in one pipelined batch.
            await ledger.hold(Hold("w2", user.pk, key.pk, 100))
            results += await asyncio.gather(ledger.hold(Hold("w3", user.pk, key.pk, 100)), ledger.settle(settlement("w2", 40)))
            wire = await db._writer_wire()
            names = await wire.execute(pg_wire.Prepared(b"test_names", "SELECT name FROM pg_prepared_statements", ()), ())
            return results, sorted(row[0] for row in names if row[0].startswith("oneapi")), lone, db.commits
        finally:
            await db.close()

    results, names, lone, commits = asyncio.run(main())
    assert results == [HoldOutcome.OK, True, HoldOutcome.OK, True]
    assert names == ["oneapi_hold_one", "oneapi_settle_one", "oneapi_write_lock"] and lone == 2 and commits == 1
    assert {c.request_id: c.status for c in RequestCharge.objects.all()} == {
        "w1": ChargeStatus.SETTLED, "w2": ChargeStatus.SETTLED, "w3": ChargeStatus.HELD,
    }
    assert sorted(ConsumeLog.objects.values_list("request_id", "quota")) == [("w1", 30), ("w2", 40)]
    user.refresh_from_db()
    key.refresh_from_db()
    assert (user.quota, user.used_quota, user.request_count) == (10_000 - 30 - 40 - 100, 70, 2)
    assert (key.remain_quota, key.used_quota) == (5_000 - 30 - 40 - 100, 70)


def test_a_gateway_on_sqlite_never_imports_psycopg(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """psycopg costs a worker ~25 MiB of RSS; the ledger's prepared statements must not pull it in."""
    code = (
        "import sys, django; django.setup(); import oneapi_site.asgi, billing.ledger, relay.db;"
        " loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'psycopg'); print(loaded); sys.exit(bool(loaded))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "oneapi_site.settings", "SQL_DSN": "", "SQLITE_PATH": str(tmp_path / "db.sqlite3")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
