"""SQLite for the relay: one connection per worker, on the event loop, with group commit.

Statements take microseconds, so they run inline on the loop (a thread hand-off would cost
more). What is expensive is COMMIT: it appends every page the transaction changed to the WAL,
and a request's hold and settle change some 20 pages (key, user, channel, the charge and log
rows and their indexes): measured ~75 us per COMMIT, three quarters of the ledger's cost. So
transactions queued during one turn of the loop run together, each body in its own SAVEPOINT
(one body failing rolls back only itself), under one BEGIN IMMEDIATE ... COMMIT. Concurrent
requests touch the same pages, so a batch of ten writes little more than one. Durability is
unchanged: no caller's `transaction()` returns before its COMMIT.

Two things could still stall the loop, and neither may:
- Waiting for another worker's write lock: SQLite's busy handler sleeps in the calling thread.
  The connection has busy_timeout 0; a busy BEGIN is retried from a loop timer (backoff 0.1 ms
  doubling to 5 ms) until SQLITE_BUSY_TIMEOUT, while further transactions join the batch.
- WAL checkpoints (they fsync): the connection never checkpoints (wal_autocheckpoint 0); a
  thread does, off the loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from .db import Cursor, Database, Params, answer

T = TypeVar("T")

MAX_BATCH = 64  # bodies per COMMIT: bounds how long one batch holds the loop and the lock
FIRST_PAUSE, MAX_PAUSE = 0.0001, 0.005  # seconds between tries while another worker holds the lock

_SQLITE_SQL: dict[str, str] = {}


def sqlite_sql(sql: str) -> str:
    translated = _SQLITE_SQL.get(sql)
    if translated is None:
        translated = _SQLITE_SQL[sql] = sql.replace("%s", "?")
    return translated


def is_busy(exc: sqlite3.OperationalError) -> bool:
    # sqlite_errorcode is set on every sqlite3 error since Python 3.11; the low byte is the
    # primary code (SQLITE_BUSY_SNAPSHOT and the like are extended codes of SQLITE_BUSY).
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


_Queued = tuple[Callable[[Cursor], Any], "asyncio.Future[Any]"]


class SQLiteDatabase(Database):
    vendor = "sqlite"

    def __init__(self, path: str, busy_timeout_ms: int, checkpoint_seconds: float = 1.0) -> None:
        # Opening may wait for another worker's lock (once per worker); from then on the
        # connection never waits inside SQLite (busy_timeout 0, see the module docstring).
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it
        # When this connection starts the WAL over, it cuts the file back to this size.
        self._conn.execute(f"PRAGMA journal_size_limit = {2 * _Checkpointer.RESTART_FRAMES * 4096}")
        self._conn.execute("PRAGMA busy_timeout = 0")
        # A batch's savepoints keep the pages they change in a sub-journal, which SQLite spills to
        # a temp file past 64 KiB: a file created, written and deleted per batch, 35 a second per
        # worker in a soak. In memory: hold + settle 106-115 us of CPU per request at 32 in flight,
        # 146-174 us before (https://www.sqlite.org/tempfiles.html, "sub-journals", temp_store).
        self._conn.execute("PRAGMA temp_store = MEMORY")
        self._busy_timeout = busy_timeout_ms / 1000
        self._checkpointer = _Checkpointer(path, busy_timeout_ms, checkpoint_seconds)
        self._queue: list[_Queued] = []
        self._flush_handle: asyncio.Handle | None = None
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._busy_since = 0.0
        self._pause = FIRST_PAUSE
        self.commits = 0  # COMMITs done (tests and the benchmark read it)

    def timestamp(self, value: datetime) -> object:
        # Django keeps SQLite datetimes as naive UTC text "YYYY-MM-DD HH:MM:SS.ffffff".
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")

    # -- reads: inline (WAL readers never wait for writers; retried in the rare busy case) ----
    async def _retry(self, attempt: Callable[[], T]) -> T:
        deadline = 0.0
        pause = FIRST_PAUSE
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                now = time.monotonic()
                if not deadline:
                    deadline = now + self._busy_timeout
                elif now >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)

    async def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        return await self._retry(lambda: self._conn.execute(sqlite_sql(sql), params).fetchone())

    async def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return await self._retry(lambda: self._conn.execute(sqlite_sql(sql), params).fetchall())

    # -- writes: group commit --------------------------------------------------------------
    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self.transaction(lambda cur: cur.execute(sql, params))

    async def transaction(self, body: Callable[[Cursor], T]) -> T:
        """Run `body` (sync, statements only) atomically, committed with whatever else is queued.

        A body runs even if its caller is cancelled meanwhile (a settle or refund must not be
        lost), in the order submitted.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append((body, future))
        if self._flush_handle is None or self._flush_loop is not loop:
            # (A handle of another loop: one that was closed with a flush still scheduled.)
            self._flush_loop = loop
            self._flush_handle = loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_handle = None
        if not self._queue:
            return
        loop = asyncio.get_running_loop()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            now = time.monotonic()
            if not self._busy_since:
                self._busy_since = now
            if is_busy(exc) and now - self._busy_since < self._busy_timeout:
                self._flush_handle = loop.call_later(self._pause, self._flush)
                self._pause = min(self._pause * 2, MAX_PAUSE)
                return
            self._busy_since, self._pause = 0.0, FIRST_PAUSE
            queued, self._queue = self._queue, []
            for _, future in queued:
                answer(future, exc)
            return
        self._busy_since, self._pause = 0.0, FIRST_PAUSE
        batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        self._run_batch(batch)
        if self._queue:
            self._flush_handle = loop.call_soon(self._flush)
        self._checkpointer.wake_if_needed()

    def _run_batch(self, batch: list[_Queued]) -> None:
        """Inside BEGIN IMMEDIATE: each body in a savepoint, then one COMMIT, then the answers.

        A body alone needs no savepoint (the transaction is its own): two statements fewer, and
        no sub-journal of the pages it changes."""
        raw = self._conn.cursor()
        cursor = Cursor(raw, sqlite_sql)
        outcomes: list[Any] = []  # each body's result, or the exception it raised
        savepoints = len(batch) > 1
        try:
            for body, _ in batch:
                if savepoints:
                    raw.execute("SAVEPOINT body")
                try:
                    outcomes.append(body(cursor))
                except Exception as exc:
                    if savepoints:
                        raw.execute("ROLLBACK TO body")
                    elif self._conn.in_transaction:  # (an error SQLite itself rolled back leaves none)
                        raw.execute("ROLLBACK")
                    outcomes.append(exc)
                if savepoints:
                    raw.execute("RELEASE body")
            if self._conn.in_transaction:  # not when a body alone failed and was rolled back
                raw.execute("COMMIT")
                self.commits += 1
        except BaseException as exc:  # COMMIT itself failed (disk full...): nothing happened
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            for _, future in batch:
                answer(future, exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            answer(future, outcome)

    async def close(self) -> None:
        # What is still queued (shutdown raced a request) is written, waiting for the lock here.
        if self._queue:
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None
            self._conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                self._conn.execute("BEGIN IMMEDIATE")
                self._run_batch(batch)
        self._checkpointer.stop()
        self._conn.close()


class _Checkpointer:
    """Copies the WAL back into the database file from a thread, so its fsyncs never run on the loop.

    Every `interval` seconds while there were commits (sooner after 1000 commits), a PASSIVE
    checkpoint, which never waits for anyone (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html).
    Under steady load from several workers that is not enough: a WAL only starts over from its
    beginning when a writer finds every frame copied and no reader inside it, which never
    happens while writes keep coming, so the WAL (and its -shm index, mapped into every worker)
    grew without end: 1.1 GB and +13 MiB RSS per worker over 100,000 requests. So once the WAL
    holds more than RESTART_FRAMES, a RESTART checkpoint waits (here, in this thread) for the
    writers and readers of the moment, finishes the copy and makes the next writer start over.
    Writers wait for it meanwhile: on the loop that is a timer retry, not a stall.
    """

    RESTART_FRAMES = 4096  # ~16 MiB of WAL

    def __init__(self, path: str, busy_timeout_ms: int, interval: float) -> None:
        self._path = path
        self._busy_timeout = busy_timeout_ms / 1000
        self._interval = interval
        self._commits = 0
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.restarts = 0

    def wake_if_needed(self) -> None:
        self._commits += 1
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
            self._thread.start()
        if self._commits >= 1000:
            self._wake.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=self._busy_timeout)
        try:
            while not self._stopped:
                self._wake.wait(self._interval)
                self._wake.clear()
                if self._commits:
                    self._commits = 0  # a race with the loop's += only delays the next round
                    self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            _, wal_frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if wal_frames > self.RESTART_FRAMES:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                self.restarts += 0 if busy else 1
        except sqlite3.Error:
            pass  # the next round tries again; the WAL only grows meanwhile

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
