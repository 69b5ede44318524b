"""The relay's SQLite access never stalls the event loop: lock waits and checkpoints happen off it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from relay.db_sqlite import _SQLITE_SQL, SQLiteDatabase


def _make_db(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    conn.execute("INSERT INTO counters VALUES (1, 0)")
    conn.close()


async def _max_loop_gap(work: asyncio.Future[object], tick: float = 0.001) -> float:
    """The longest time the loop was away while `work` ran (a stalled loop shows as a long gap)."""
    longest = 0.0
    last = time.monotonic()
    while not work.done():
        await asyncio.sleep(tick)
        now = time.monotonic()
        longest = max(longest, now - last)
        last = now
    return longest


def test_waiting_for_another_writer_keeps_the_loop_running(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    _make_db(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another worker holds the write lock for 600 ms
    threading.Timer(0.6, lambda: other.execute("COMMIT")).start()

    async def main() -> tuple[int, float, float]:
        db = SQLiteDatabase(str(path), busy_timeout_ms=5000)
        started = time.monotonic()
        work = asyncio.ensure_future(db.transaction(lambda cur: cur.execute("UPDATE counters SET n = n + 1 WHERE id = 1")))
        gap = await _max_loop_gap(work)
        changed = await work
        waited = time.monotonic() - started
        await db.close()
        return changed, gap, waited

    changed, gap, waited = asyncio.run(main())
    assert changed == 1
    assert waited >= 0.59  # it did wait for the lock...
    # ...without holding the loop (SQLite's busy handler would have held it 600 ms); the margin
    # is for a loaded CI machine, where one 123 ms gap was seen.
    assert gap < 0.25
    other.close()


def test_gives_up_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    _make_db(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def main() -> None:
        db = SQLiteDatabase(str(path), busy_timeout_ms=150)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                await db.execute("UPDATE counters SET n = n + 1 WHERE id = 1")
        finally:
            await db.close()

    started = time.monotonic()
    asyncio.run(main())
    assert 0.14 <= time.monotonic() - started < 2
    other.execute("ROLLBACK")
    other.close()


def test_a_failing_body_rolls_back_and_other_errors_are_not_retried(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    _make_db(path)

    def body(cur: object) -> None:
        cur.execute("UPDATE counters SET n = 5 WHERE id = 1")  # type: ignore[attr-defined]
        raise ValueError("boom")

    async def main() -> int:
        db = SQLiteDatabase(str(path), busy_timeout_ms=5000)
        with pytest.raises(ValueError):
            await db.transaction(body)
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await db.execute("UPDATE missing SET n = 1")
        row = await db.fetchone("SELECT n FROM counters WHERE id = %s", (1,))
        await db.close()
        assert row is not None
        return int(row[0])

    assert asyncio.run(main()) == 0


def test_commits_are_checkpointed_by_the_thread(tmp_path: Path) -> None:
    """The loop's connection never checkpoints; without the thread the WAL would hold all 250 commits."""
    path = tmp_path / "db.sqlite3"
    _make_db(path)
    frame = 4096 + 24  # page + WAL frame header

    async def main() -> int:
        db = SQLiteDatabase(str(path), busy_timeout_ms=5000, checkpoint_seconds=0.05)
        for _ in range(5):
            for _ in range(50):
                await db.transaction(lambda cur: cur.execute("UPDATE counters SET n = n + 1 WHERE id = 1"))
            await asyncio.sleep(0.2)  # a checkpoint round: the next writer starts the WAL over
        wal_bytes = (tmp_path / "db.sqlite3-wal").stat().st_size
        await db.close()
        return wal_bytes

    wal_bytes = asyncio.run(main())
    assert wal_bytes < 120 * frame, wal_bytes
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT n FROM counters").fetchone() == (250,)
    conn.close()


def test_without_the_thread_the_wal_would_grow(tmp_path: Path) -> None:
    """The control for the test above: the same commits, no checkpoint rounds."""
    path = tmp_path / "db.sqlite3"
    _make_db(path)

    async def main() -> int:
        db = SQLiteDatabase(str(path), busy_timeout_ms=5000, checkpoint_seconds=3600)
        for _ in range(250):
            await db.transaction(lambda cur: cur.execute("UPDATE counters SET n = n + 1 WHERE id = 1"))
        wal_bytes = (tmp_path / "db.sqlite3-wal").stat().st_size
        await db.close()
        return wal_bytes

    assert asyncio.run(main()) >= 250 * 4096


def test_transactions_queued_together_share_one_commit_and_fail_alone(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    _make_db(path)

    def add(cur: object) -> int:
        return cur.execute("UPDATE counters SET n = n + 1 WHERE id = 1")  # type: ignore[attr-defined,no-any-return]

    def add_then_fail(cur: object) -> None:
        add(cur)
        raise LookupError("refused")  # as a refused hold does, after its first UPDATE

    async def main() -> tuple[list[object], int, int]:
        db = SQLiteDatabase(str(path), busy_timeout_ms=5000)
        bodies = [add] * 10 + [add_then_fail] + [add] * 9
        results = await asyncio.gather(*(db.transaction(b) for b in bodies), return_exceptions=True)
        commits = db.commits
        n = await db.fetchone("SELECT n FROM counters WHERE id = 1")
        await db.close()
        assert n is not None
        return results, commits, int(n[0])

    results, commits, n = asyncio.run(main())
    assert results[:10] == [1] * 10 and results[11:] == [1] * 9
    assert isinstance(results[10], LookupError)
    assert commits == 1  # twenty transactions, one COMMIT
    assert n == 19  # the failed body's own UPDATE was rolled back, nobody else's


def test_a_cancelled_caller_still_gets_its_body_committed(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    _make_db(path)

    async def main() -> int:
        db = SQLiteDatabase(str(path), busy_timeout_ms=5000)
        task = asyncio.ensure_future(db.transaction(lambda cur: cur.execute("UPDATE counters SET n = 7 WHERE id = 1")))
        await asyncio.sleep(0)  # queued...
        task.cancel()  # ...and its caller gone (a client that disconnected during a settle)
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.01)
        row = await db.fetchone("SELECT n FROM counters WHERE id = 1")
        await db.close()
        assert row is not None
        return int(row[0])

    assert asyncio.run(main()) == 7


def test_a_busy_wal_is_started_over_while_others_keep_writing(tmp_path: Path) -> None:
    """Another process writes all the time (as a second worker does): the WAL must not grow without end."""
    path = tmp_path / "db.sqlite3"
    _make_db(path)
    stop = threading.Event()
    other_commits = 0

    def other_worker() -> None:
        nonlocal other_commits
        conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        conn.execute("PRAGMA wal_autocheckpoint=0")
        while not stop.is_set():
            conn.execute("INSERT INTO counters (n) VALUES (1)")
            other_commits += 1
            if other_commits % 20 == 0:
                time.sleep(0.0005)  # a worker's batches come with gaps, never back to back for ever
        conn.close()

    own = 0

    async def main() -> tuple[int, int]:
        nonlocal own
        db = SQLiteDatabase(str(path), busy_timeout_ms=5000, checkpoint_seconds=0.02)
        db._checkpointer.RESTART_FRAMES = 200  # type: ignore[misc]
        # Until both wrote thousands of commits and the WAL was started over at least once (on a
        # loaded machine the checkpointer may need a few rounds to get its turn).
        deadline = time.monotonic() + 30
        while own < 3000 or (db._checkpointer.restarts == 0 and time.monotonic() < deadline):
            for _ in range(100):
                await db.transaction(lambda cur: cur.execute("UPDATE counters SET n = n + 1 WHERE id = 1"))
            own += 100
        stop.set()
        writer.join()
        probe = sqlite3.connect(path, timeout=5)
        _, frames_now, _ = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        probe.close()
        restarts = db._checkpointer.restarts
        await db.close()
        return frames_now, restarts

    writer = threading.Thread(target=other_worker)
    writer.start()
    try:
        frames_now, restarts = asyncio.run(main())
    finally:
        stop.set()
        writer.join()
    commits = own + other_commits  # each one appended at least one frame
    assert restarts >= 1
    # Frames since the WAL last started over; without restarts it would hold every commit.
    assert frames_now < commits / 2, (frames_now, commits)


def test_insert_rows_writes_every_row_with_one_statement_text(tmp_path: Path) -> None:
    """Whatever the batch size, one INSERT text: sqlite3 keeps each distinct text prepared, and
    multi-row INSERTs of varying sizes once grew every worker by ~27 MiB."""
    path = tmp_path / "db.sqlite3"
    _make_db(path)
    batches = [[(i, i * 3) for i in range(start, start + size)] for start, size in ((2, 3), (5, 7), (12, 1200))]

    async def main() -> None:
        db = SQLiteDatabase(str(path), busy_timeout_ms=5000)
        for rows in batches:
            await db.insert_rows("counters", ("id", "n"), rows)
        await db.close()

    asyncio.run(main())
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT id, n FROM counters WHERE id > 1 ORDER BY id").fetchall() == [r for b in batches for r in b]
    conn.close()
    assert len([sql for sql in _SQLITE_SQL if sql.startswith("INSERT INTO counters")]) == 1


def test_savepoint_journals_stay_in_memory(tmp_path: Path) -> None:
    """A batch's savepoints spill their sub-journal to a temp file past 64 KiB unless temp_store
    is MEMORY: a file created and deleted per batch (see SQLiteDatabase.__init__)."""
    path = tmp_path / "db.sqlite3"
    _make_db(path)

    async def main() -> int:
        db = SQLiteDatabase(str(path), 1000)
        try:
            return int(db._conn.execute("PRAGMA temp_store").fetchone()[0])
        finally:
            await db.close()

    assert asyncio.run(main()) == 2  # MEMORY
