"""PostgreSQL group commit (relay/db.py `PostgresDatabase.write`), on the real server (CI's second run)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from relay.db import WRITE_LOCK_CTE, Combined, PostgresDatabase, _postgres_conninfo, combined_rows, json_array_literal
from relay.pg_wire import Prepared, prepared

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="PostgreSQL only: the CI's PostgreSQL + Redis run covers it",
    ),
]


@pytest.fixture
def counters():  # type: ignore[no-untyped-def]
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS test_counters (id int PRIMARY KEY, n int NOT NULL)")
        cur.execute("DELETE FROM test_counters")
        cur.execute("INSERT INTO test_counters VALUES (1, 0), (2, 0)")
    yield
    with connection.cursor() as cur:
        cur.execute("DROP TABLE test_counters")


def _run(body: Any) -> Any:
    async def main() -> Any:
        db = PostgresDatabase(_postgres_conninfo(settings.DATABASES["default"]), 4)
        try:
            return await body(db)
        finally:
            await db.close()

    return asyncio.run(main())


ADD = prepared("test_add", "UPDATE test_counters SET n = n + {n} WHERE id = {id} RETURNING n", (("n", "integer"), ("id", "integer")))


def test_concurrent_writes_share_commits_and_each_gets_its_row(counters) -> None:  # type: ignore[no-untyped-def]
    async def body(db: PostgresDatabase) -> tuple[list[Any], int]:
        rows = await asyncio.gather(*(db.write(ADD, (1, 1)) for _ in range(40)))
        return rows, db.commits

    rows, commits = _run(body)
    assert sorted(row[0] for row in rows) == list(range(1, 41))  # each saw its own increment
    assert 1 <= commits < 40  # queued together, committed together
    with connection.cursor() as cur:
        cur.execute("SELECT n FROM test_counters WHERE id = 1")
        assert cur.fetchone() == (40,)


def test_a_failing_statement_fails_alone(counters) -> None:  # type: ignore[no-untyped-def]
    async def body(db: PostgresDatabase) -> list[Any]:
        writes = [db.write(ADD, (1, 2)) for _ in range(5)]
        writes.append(db.write(Prepared(b"test_div0", "UPDATE test_counters SET n = n / 0 WHERE id = 2 RETURNING n", ())))
        writes += [db.write(ADD, (1, 2)) for _ in range(5)]
        return await asyncio.gather(*writes, return_exceptions=True)

    results = _run(body)
    assert "division by zero" in str(results[5])
    assert sorted(row[0] for i, row in enumerate(results) if i != 5) == list(range(1, 11))
    with connection.cursor() as cur:
        cur.execute("SELECT n FROM test_counters WHERE id = 2")
        assert cur.fetchone() == (10,)  # the batch was rolled back, then each ran again alone


def test_a_parameter_that_cannot_be_sent_fails_alone_and_nothing_runs_twice(counters) -> None:  # type: ignore[no-untyped-def]
    """The second write's parameter has no text form: the batch is refused before anything is
    sent, so the first write is not committed with it and then run again alone."""

    async def body(db: PostgresDatabase) -> list[Any]:
        writes = [db.write(ADD, (1, 1)), db.write(ADD, (object(), 1)), db.write(ADD, (1, 1))]
        return await asyncio.gather(*writes, return_exceptions=True)

    results = _run(body)
    assert isinstance(results[1], TypeError) and "no text form" in str(results[1])
    assert sorted(r[0] for r in (results[0], results[2])) == [1, 2]
    with connection.cursor() as cur:
        cur.execute("SELECT n FROM test_counters WHERE id = 1")
        assert cur.fetchone() == (2,)


def test_a_cancelled_caller_still_gets_its_write(counters) -> None:  # type: ignore[no-untyped-def]
    async def body(db: PostgresDatabase) -> None:
        task = asyncio.ensure_future(db.write(ADD, (7, 1)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    _run(body)  # close() waits for the queued write
    with connection.cursor() as cur:
        cur.execute("SELECT n FROM test_counters WHERE id = 1")
        assert cur.fetchone() == (7,)


def _terminate(pid: int) -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    connection.close()


PID = prepared("test_pid", "UPDATE test_counters SET n = n + 1 WHERE id = {id} RETURNING pg_backend_pid()", (("id", "integer"),))


def test_the_writer_keeps_its_connection_and_replaces_it_when_the_server_drops_it(counters) -> None:  # type: ignore[no-untyped-def]
    async def body(db: PostgresDatabase) -> tuple[set[int], int, Any, int]:
        pids = {(await db.write(PID, (1,)))[0] for _ in range(5)}  # five lone writes, one after another
        taken = db._pool.get_stats().get("requests_num", 0)
        await asyncio.to_thread(_terminate, next(iter(pids)))  # the server ends it (a restart, an idle timeout)
        failed = await asyncio.gather(db.write(PID, (1,)), return_exceptions=True)
        fresh = (await db.write(PID, (1,)))[0]
        return pids, taken, failed[0], fresh

    pids, taken, failed, fresh = _run(body)
    assert len(pids) == 1 and taken == 1  # taken from the pool once, not once per write
    # The writer reads the server's goodbye when the loop sees the socket readable. Seen before
    # the next write, that write already goes out on a new connection; seen after, the write was
    # sent on the dead one and fails, as with a pooled connection. Either way, no write after it
    # uses the dead connection.
    assert isinstance(failed, Exception) or failed[0] not in pids
    assert fresh not in pids
    with connection.cursor() as cur:
        cur.execute("SELECT n FROM test_counters WHERE id = 1")
        assert cur.fetchone() == (6 if isinstance(failed, Exception) else 7,)


def test_the_writer_gives_its_connection_back_to_the_pool_in_time(counters, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("relay.db._WRITER_CONNECTION_SECONDS", 0.0)  # due back before every batch

    async def body(db: PostgresDatabase) -> tuple[int, int]:
        for _ in range(3):
            await db.write(PID, (1,))
        stats = db._pool.get_stats()
        return stats.get("requests_num", 0), stats.get("returns_bad", 0)

    requests, bad = _run(body)
    assert requests == 3 and bad == 0  # taken from and given back to the pool each time, healthy


def _both_rows(first: int, second: int) -> Prepared:
    """Locks both rows, `first` then `second` 2 ms later, taking the write lock first (WRITE_LOCK_CTE).

    Without the lock, the test below deadlocks (checked by hand: PostgreSQL's DeadlockDetected).
    """
    return Prepared(
        f"test_both_{first}_{second}".encode(),
        f"WITH {WRITE_LOCK_CTE}, a AS (UPDATE test_counters SET n = n + 1 WHERE id = {first}"
        " AND EXISTS (SELECT 1 FROM _w) RETURNING n), s AS (SELECT pg_sleep(0.002) FROM a)"
        f" UPDATE test_counters SET n = n + 1 WHERE id = {second} AND (SELECT count(*) FROM s) >= 0 RETURNING n",
        (),
    )


FORWARD, BACKWARD = _both_rows(1, 2), _both_rows(2, 1)


def test_two_workers_batching_the_same_rows_never_deadlock(counters) -> None:  # type: ignore[no-untyped-def]
    """Two workers (two pools), each with batches that lock the same two rows in both orders."""

    async def main() -> list[Any]:
        conninfo = _postgres_conninfo(settings.DATABASES["default"])
        workers = [PostgresDatabase(conninfo, 4), PostgresDatabase(conninfo, 4)]
        try:
            writes = [db.write(FORWARD if (i + j) % 2 else BACKWARD) for i in range(100) for j, db in enumerate(workers)]
            return await asyncio.gather(*writes, return_exceptions=True)
        finally:
            for db in workers:
                await db.close()

    results = asyncio.run(main())
    assert [r for r in results if isinstance(r, BaseException)] == []
    with connection.cursor() as cur:
        cur.execute("SELECT n FROM test_counters ORDER BY id")
        assert cur.fetchall() == [(200,), (200,)]


def test_a_lone_write_is_one_autocommit_statement_and_never_deadlocks_with_batches(counters) -> None:  # type: ignore[no-untyped-def]
    """One worker writes one statement at a time (each sent alone), the other in batches, in both orders."""

    async def main() -> tuple[list[Any], int, int]:
        conninfo = _postgres_conninfo(settings.DATABASES["default"])
        lone, batched = PostgresDatabase(conninfo, 4), PostgresDatabase(conninfo, 4)

        async def one_at_a_time() -> list[Any]:
            return [await lone.write(FORWARD if i % 2 else BACKWARD) for i in range(60)]

        try:
            results = await asyncio.gather(
                one_at_a_time(), *(batched.write(BACKWARD if i % 2 else FORWARD) for i in range(60)), return_exceptions=True
            )
            return results, lone.lone_writes, lone.commits
        finally:
            await lone.close()
            await batched.close()

    results, lone_writes, lone_commits = asyncio.run(main())
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert (lone_writes, lone_commits) == (60, 0)
    with connection.cursor() as cur:
        cur.execute("SELECT n FROM test_counters ORDER BY id")
        assert cur.fetchall() == [(120,), (120,)]


def test_a_statement_without_a_result_row_answers_none_and_runs_once(counters) -> None:  # type: ignore[no-untyped-def]
    no_returning = Prepared(b"test_no_returning", "UPDATE test_counters SET n = n + 100 WHERE id = 2", ())

    async def body(db: PostgresDatabase) -> tuple[list[Any], int]:
        writes = [db.write(ADD, (1, 1)), db.write(no_returning), db.write(ADD, (1, 1))]
        return await asyncio.gather(*writes, return_exceptions=True), db.commits

    results, commits = _run(body)
    assert results == [(1,), None, (2,)] and commits == 1
    with connection.cursor() as cur:
        cur.execute("SELECT n FROM test_counters ORDER BY id")
        assert cur.fetchall() == [(2,), (100,)]  # committed once, not again by a fallback


# Adds each instance's n to its row, all in one statement; returns the row's new value per instance
# (a row added to twice in one batch returns the total after both).
ADD_ONE = prepared(
    "test_add_one", "UPDATE test_counters SET n = n + {n} WHERE id = {id} RETURNING 1, n, 100 / {n}", (("n", "integer"), ("id", "integer"))
)
ADD_MANY = Combined(
    Combined.statement(
        "test_add_many",
        "WITH a AS " + combined_rows((("id", "int"), ("n", "int"))) + ","
        " u AS (UPDATE test_counters SET n = test_counters.n + d.n FROM (SELECT id, sum(n) AS n FROM a GROUP BY id) d"
        " WHERE test_counters.id = d.id RETURNING test_counters.id, test_counters.n)"
        " SELECT a.ord, u.n, 100 / a.n FROM a JOIN u USING (id)",
    ),
    lambda f: (ADD_ONE, (f[1], f[0])),
)


def test_combined_writes_queued_together_are_one_statement_and_each_gets_its_row(counters) -> None:  # type: ignore[no-untyped-def]
    async def body(db: PostgresDatabase) -> tuple[list[Any], int, int]:
        writes = [db.write_combined(ADD_MANY, (1 + i % 2, 1 + i)) for i in range(6)]
        writes.insert(2, db.write(ADD, (1000, 2)))  # a plain write in the same batch
        writes.append(db.write_combined(ADD_MANY, (3, 5)))  # no such row: no result
        return await asyncio.gather(*writes), db.commits, db.lone_writes

    results, commits, lone = _run(body)
    # One batch: the lock, the plain write, and one statement for all seven combined instances.
    assert (commits, lone) == (1, 0)
    odd, even = 1 + 3 + 5, 2 + 4 + 6
    assert results[2] == (1000 + even,) or results[2] == (1000,)  # the plain write ran before or after
    assert [results[i] for i in (0, 3, 5)] == [(odd, 100 // n) for n in (1, 3, 5)]
    assert results[-1] is None
    with connection.cursor() as cur:
        cur.execute("SELECT n FROM test_counters ORDER BY id")
        assert cur.fetchall() == [(odd,), (1000 + even,)]


def test_a_failing_combined_instance_fails_alone(counters) -> None:  # type: ignore[no-untyped-def]
    async def body(db: PostgresDatabase) -> tuple[list[Any], int]:
        writes = [db.write_combined(ADD_MANY, (1, n)) for n in (1, 0, 2)]  # n = 0: division by zero
        writes.append(db.write(ADD, (5, 2)))
        return await asyncio.gather(*writes, return_exceptions=True), db.commits

    results, commits = _run(body)
    assert "division by zero" in str(results[1])
    assert results[0] == (1, 100) and results[2] == (3, 50) and results[3] == (5,)  # then each ran alone, in order
    assert commits == 0  # the batch was rolled back
    with connection.cursor() as cur:
        cur.execute("SELECT n FROM test_counters ORDER BY id")
        assert cur.fetchall() == [(3,), (5,)]


def test_combined_instances_reach_postgresql_as_sent() -> None:
    """The array text a Combined statement sends: quotes, backslashes, braces, commas, newlines,
    NULL-looking text and non-ASCII survive, each instance one element."""
    instances = [
        ('say "hi"', "back\\slash \\\"", "{a,b}", "x\ny", None, "NULL", 'end"', "ünï 💡", 7, True),
        ("", 0, False, -1.5, '"', "\\"),
    ]
    with connection.cursor() as cur:
        cur.execute("SELECT v::text FROM unnest(%s::jsonb[]) WITH ORDINALITY AS e(v, ord) ORDER BY ord", [json_array_literal(instances)])
        rows = [json.loads(row[0]) for row in cur.fetchall()]
    assert rows == [list(instance) for instance in instances]


def test_insert_rows_copies_every_value_faithfully() -> None:
    from datetime import UTC, datetime

    with connection.cursor() as cur:
        cur.execute("CREATE TABLE test_copied (id serial PRIMARY KEY, name text, at timestamptz, ok boolean, ms float8)")
    try:
        at = datetime(2026, 12, 6, 15, 30, 1, 250000, tzinfo=UTC)
        rows = [(f"r{i}", at, i % 2 == 0, None if i == 1 else i / 4) for i in range(300)]
        rows[2] = ("tab\there, new\nline and \\ back", at, True, 0.5)  # COPY's escapes

        async def body(db: PostgresDatabase) -> None:
            await db.insert_rows("test_copied", ("name", "at", "ok", "ms"), rows)

        _run(body)
        with connection.cursor() as cur:
            cur.execute("SELECT name, at, ok, ms FROM test_copied ORDER BY id")
            assert cur.fetchall() == rows
    finally:
        with connection.cursor() as cur:
            cur.execute("DROP TABLE test_copied")
