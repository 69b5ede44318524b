"""The relay's own async database access: raw statements, no ORM, no thread hop per request.

- PostgreSQL: psycopg's async connection pool (autocommit; the ledger's writes are single
  statements, so each one is atomic on its own); the ledger's writes go out as prepared
  statements straight over libpq (relay/pg_wire.py), grouped (see PostgresDatabase).
- SQLite: one connection per worker used from the event loop thread, with group commit (see
  relay/db_sqlite.py).
- Other vendors (MySQL): the same portable statements through Django's connection in a thread.

SQL is written with %s placeholders (translated for sqlite3), but for the prepared PostgreSQL
writes ($1, $2, ... see relay/pg_wire.py).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from django.conf import settings

from . import pg_wire
from .pg_wire import Prepared

T = TypeVar("T")
Params = Sequence[Any] | dict[str, Any]
ROWS_PER_TRANSACTION = 500  # insert_rows: a backlog is written in steps, each short on the event loop (SQLite)


class Cursor:
    """What a sync transaction body gets: execute() returning rowcount, fetchone/fetchall."""

    def __init__(self, raw: Any, translate: Callable[[str], str]) -> None:
        self._raw = raw
        self._translate = translate

    def execute(self, sql: str, params: Params = ()) -> int:
        self._raw.execute(self._translate(sql), params)
        return int(self._raw.rowcount)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._raw.executemany(self._translate(sql), rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._raw.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._raw.fetchall())


class Database:
    vendor: str = ""

    def timestamp(self, value: datetime) -> object:
        """A datetime parameter as Django stores it for this vendor."""
        return value

    async def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        raise NotImplementedError

    async def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def execute(self, sql: str, params: Params = ()) -> int:
        raise NotImplementedError

    async def transaction(self, body: Callable[[Cursor], T]) -> T:
        """Run `body` (sync, statements only) atomically."""
        raise NotImplementedError

    async def write(self, sql: Prepared, params: Params = ()) -> tuple[Any, ...] | None:
        """A data-modifying statement whose first result row the caller needs (the ledger's
        writes on PostgreSQL), committed together with others' writes (group commit)."""
        raise NotImplementedError(f"prepared writes are PostgreSQL only, not {self.vendor}")

    async def write_combined(self, kind: Combined, fields: Sequence[Any]) -> tuple[Any, ...] | None:
        """One instance of a combinable write (PostgreSQL only; see `Combined`)."""
        raise NotImplementedError(f"combined writes are PostgreSQL only, not {self.vendor}")

    async def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert many rows at once (background writers: request traces).

        One single-row INSERT run for every row (executemany), ROWS_PER_TRANSACTION rows per
        transaction. Its text never changes: multi-row INSERTs of varying sizes were a new
        statement at each flush, and sqlite3 kept up to 128 of them prepared, ~27 MiB of
        memory per worker that the soak saw as slow RSS growth.
        """
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        for start in range(0, len(rows), ROWS_PER_TRANSACTION):
            await self.transaction(functools.partial(Cursor.executemany, sql=sql, rows=rows[start : start + ROWS_PER_TRANSACTION]))

    async def close(self) -> None:
        return None


def answer(future: asyncio.Future[Any], outcome: Any) -> None:
    """Give a queued caller its result, or its error when `outcome` is an exception.

    Group commit runs what was queued even when the caller is gone (cancelled, or its event
    loop closed); then there is nobody to answer.
    """
    if future.done() or future.get_loop().is_closed():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


_WRITE_BATCH = 64  # writes per group commit
# The writer keeps one pooled connection between batches (taking it from the pool and giving it
# back per write cost ~8% of the client CPU of a hold + settle sent alone); after this long it
# gives it back before the next batch, so the pool's rules (max_lifetime, discarding broken
# connections) still apply to it.
_WRITER_CONNECTION_SECONDS = 30.0
# Every write batch takes this transaction-scoped advisory lock first, so batches of different
# workers run one after another: two batches each locking several key and user rows in
# different orders could otherwise deadlock (PostgreSQL would break it after deadlock_timeout).
_WRITE_LOCK = 0x0A11A9E1
# A write that runs alone is sent as one autocommit statement, outside any batch, so a statement
# that locks more than one row must take the same lock itself before its first row lock: start
# with `WITH {WRITE_LOCK_CTE}, ...` and have its first row-locking step test
# `EXISTS (SELECT 1 FROM _w)` (an uncorrelated sub-select runs once, before any row is locked).
WRITE_LOCK_CTE = f"_w AS (SELECT pg_advisory_xact_lock({_WRITE_LOCK}))"
_WRITE_LOCK_STATEMENT = Prepared(b"oneapi_write_lock", f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})", ())


@dataclass(frozen=True, slots=True)
class Combined:
    """A kind of write whose queued instances go out together as one statement.

    An instance is a tuple of fields. `sql` takes one parameter, an array with one JSON array of
    fields per instance (`$1`, read with `combined_rows`), and returns one row per instance that
    has a result: its position (1-based) first, then the result. So a batch of any size costs one
    statement to send, parse and run, and the rows it touches are updated once per batch, not
    once per request. `single` gives the statement (SQL, parameters) for an instance queued
    alone, with the same result (position 1): the set-based statement costs PostgreSQL ~90 us
    more than a statement written for one row, which only a batch pays back. Both go out by
    name (relay/pg_wire.py).

    One array of JSON, not one array per field: one parameter to encode and parse, not 21 (a
    settle's fields). Not one JSON document: the planner assumes 100 rows for
    jsonb_array_elements() and then preferred hash joins over scans of whole tables to index
    lookups; it assumes 10 for unnest() of an array.
    """

    sql: Prepared
    single: Callable[[Sequence[Any]], tuple[Prepared, Params]]

    @staticmethod
    def statement(name: str, sql: str) -> Prepared:
        """The set-based statement: `sql`, written with `combined_rows`, takes the array as $1."""
        return Prepared(name.encode(), sql, (pg_wire.JSONB_ARRAY_OID,))


def combined_rows(fields: Sequence[tuple[str, str]]) -> str:
    """The FROM item of a Combined statement: one row per instance, its fields (name, SQL type)
    typed, and `ord`, its position."""
    columns = ", ".join(f"(v->>{i})::{sql_type} AS {name}" for i, (name, sql_type) in enumerate(fields))
    return f"(SELECT {columns}, ord FROM unnest($1::jsonb[]) WITH ORDINALITY AS e(v, ord))"


def json_array_literal(instances: Sequence[Params]) -> str:
    """The text of a PostgreSQL array with one JSON document per instance, for `%s::jsonb[]`.

    Each element is double-quoted with its `"` and `\\` escaped
    (https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO). psycopg's list dumper makes
    the same text from a list of str, but escapes with a regular-expression substitution per
    quote, and JSON is mostly quotes: ~2% of a worker's CPU at c=32 (py-spy)."""
    elements = (orjson.dumps(instance).replace(b"\\", b"\\\\").replace(b'"', b'\\"') for instance in instances)
    return (b'{"' + b'","'.join(elements) + b'"}').decode()


_Write = tuple[Prepared | Combined, Params, asyncio.Future[tuple[Any, ...] | None]]  # what, with what, for whom


class _Statement:
    """One statement of a write batch: a plain write, or the instances of one Combined kind."""

    __slots__ = ("target", "instances", "futures")

    def __init__(self, target: Prepared | Combined) -> None:
        self.target = target
        self.instances: list[Params] = []
        self.futures: list[asyncio.Future[tuple[Any, ...] | None]] = []

    @staticmethod
    def group(writes: list[_Write]) -> list[_Statement]:
        statements: list[_Statement] = []
        kinds: dict[Combined, _Statement] = {}
        for target, params, future in writes:
            statement = kinds.get(target) if isinstance(target, Combined) else None
            if statement is None:
                statement = _Statement(target)
                statements.append(statement)
                if isinstance(target, Combined):
                    kinds[target] = statement
            statement.instances.append(params)
            statement.futures.append(future)
        return statements

    def query(self) -> tuple[Prepared, Params]:
        if not isinstance(self.target, Combined):
            return self.target, self.instances[0]
        if len(self.instances) == 1:
            return self.target.single(self.instances[0])
        return self.target.sql, (json_array_literal(self.instances),)

    def split(self) -> list[_Statement]:
        """Each instance as a statement of its own (to run alone after the whole failed)."""
        alone = []
        for params, future in zip(self.instances, self.futures, strict=True):
            statement = _Statement(self.target)
            statement.instances.append(params)
            statement.futures.append(future)
            alone.append(statement)
        return alone

    def results(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...] | None]:
        """One result per instance: a plain write's first row (None if it returned none), or
        from the rows of a Combined statement (position first) each instance's."""
        if not isinstance(self.target, Combined):
            return [rows[0] if rows else None]
        found = {row[0]: row[1:] for row in rows}
        return [found.get(position) for position in range(1, len(self.futures) + 1)]

    def answer(self, outcome: list[tuple[Any, ...] | None] | BaseException) -> None:
        for i, future in enumerate(self.futures):
            answer(future, outcome if isinstance(outcome, BaseException) else outcome[i])


class PostgresDatabase(Database):
    """psycopg's async pool, autocommit; the ledger's writes are grouped (see `write`).

    Every request updates its key's and user's rows, and with one hot key that serialised all
    requests on row locks, each waiting for the previous one's commit (bench: 318 req/s at 32
    in flight, 2.8 ms of PostgreSQL CPU per request). `write` and `write_combined` queue the
    write; one batch at a time per worker sends the queued statements in one pipeline inside one
    transaction, so a batch costs one round trip and one commit, and its statements never wait
    for each other. The queued instances of one `Combined` kind (the ledger's holds, its
    settles) are one statement. If any statement fails, the batch's transaction is rolled back
    whole and each write runs again alone, so only the bad one fails. A batch that is a single
    statement runs as one autocommit statement (see WRITE_LOCK_CTE). Every write is a
    `Prepared` statement, sent by name over libpq on the writer's own connection
    (relay/pg_wire.py), alone or, for a batch, in libpq's pipeline mode.
    """

    vendor = "postgresql"

    def __init__(self, conninfo: str, max_size: int, synchronous_commit: bool = True) -> None:
        from psycopg_pool import AsyncConnectionPool

        kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": 1}
        if not synchronous_commit:
            # https://www.postgresql.org/docs/current/wal-async-commit.html: no corruption, at
            # most ~3 x wal_writer_delay of commits lost if PostgreSQL itself crashes.
            kwargs["options"] = "-c synchronous_commit=off"
        self._pool = AsyncConnectionPool(conninfo, min_size=1, max_size=max_size, open=False, kwargs=kwargs)
        self._opened = False
        self._lock = asyncio.Lock()
        self._writes: list[_Write] = []
        self._writer: asyncio.Task[None] | None = None
        self._wire: pg_wire.Wire | None = None  # the writer's pooled connection, see _writer_wire
        self._writer_conn_until = 0.0
        self.commits = 0  # write batches committed (tests read it)
        self.lone_writes = 0  # batches sent as one autocommit statement

    async def _ensure_open(self) -> None:
        if not self._opened:
            async with self._lock:
                if not self._opened:
                    await self._pool.open(wait=True, timeout=30)
                    self._opened = True

    async def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        await self._ensure_open()
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        await self._ensure_open()
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def execute(self, sql: str, params: Params = ()) -> int:
        await self._ensure_open()
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return cur.rowcount

    async def write(self, sql: Prepared, params: Params = ()) -> tuple[Any, ...] | None:
        return await self._queue(sql, params)

    async def write_combined(self, kind: Combined, fields: Sequence[Any]) -> tuple[Any, ...] | None:
        return await self._queue(kind, fields)

    async def _queue(self, target: Prepared | Combined, params: Params) -> tuple[Any, ...] | None:
        future: asyncio.Future[tuple[Any, ...] | None] = asyncio.get_running_loop().create_future()
        self._writes.append((target, params, future))
        if self._writer is None or self._writer.done():
            # Not tied to the caller: a caller cancelled meanwhile does not cancel the others'
            # writes, and its own statement still runs (a settle must not be lost).
            self._writer = asyncio.get_running_loop().create_task(self._write_batches())
        return await future

    async def _write_batches(self) -> None:
        while self._writes:
            batch, self._writes = self._writes[:_WRITE_BATCH], self._writes[_WRITE_BATCH:]
            statements = _Statement.group(batch)
            if len(statements) == 1:  # one statement: one round trip, no lock statement or Sync of its own
                self.lone_writes += 1
                await self._run_alone(statements[0])
                continue
            try:
                outcomes = await self._commit_batch(statements)
            except Exception:
                for statement in statements:
                    for alone in statement.split():
                        await self._run_alone(alone)
                continue
            for statement, outcome in zip(statements, outcomes, strict=True):
                statement.answer(outcome)

    async def _writer_wire(self) -> pg_wire.Wire:
        """The connection the writer sends its statements on (as a Wire): kept between batches
        (only the writer task uses it, one batch at a time), renewed from the pool when closed or
        held too long."""
        wire = self._wire
        if wire is not None and not wire.conn.closed and time.monotonic() < self._writer_conn_until:
            return wire
        await self._release_writer_connection()
        await self._ensure_open()
        self._wire = pg_wire.Wire(await self._pool.getconn())
        self._writer_conn_until = time.monotonic() + _WRITER_CONNECTION_SECONDS
        return self._wire

    async def _release_writer_connection(self) -> None:
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.unwatch()
            await self._pool.putconn(wire.conn)  # the pool discards a closed or broken one

    async def _run_alone(self, statement: _Statement) -> None:
        """One autocommit statement; combined instances that fail together run again one by one."""
        try:
            sql, params = statement.query()
            wire = await self._writer_wire()
            outcome: list[tuple[Any, ...] | None] | BaseException = statement.results(await wire.execute(sql, params))
        except Exception as exc:
            if len(statement.futures) > 1:
                for alone in statement.split():
                    await self._run_alone(alone)
                return
            outcome = exc
        statement.answer(outcome)

    async def _commit_batch(self, statements: list[_Statement]) -> list[list[tuple[Any, ...] | None]]:
        """Raises only if nothing was committed (so the caller may run them again): the write
        lock and the statements go out in one pipeline closed by one Sync (`Wire.run_batch`).
        A parameter that cannot be sent fails before anything is."""
        queries = [(_WRITE_LOCK_STATEMENT, ()), *(statement.query() for statement in statements)]
        wire = await self._writer_wire()
        rows = await wire.run_batch(queries)
        self.commits += 1
        return [statement.results(found) for statement, found in zip(statements, rows[1:], strict=True)]

    async def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        # COPY: no statement text to build or parse (a 200-row INSERT has 3,200 parameters,
        # past what psycopg caches, and cost ~9% of a worker's CPU under load), rows streamed.
        # https://www.psycopg.org/psycopg3/docs/basic/copy.html
        await self._ensure_open()
        async with self._pool.connection() as conn, conn.cursor() as cur:
            async with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    await copy.write_row(row)

    async def transaction(self, body: Callable[[Cursor], T]) -> T:
        # The ledger uses single statements on PostgreSQL; this path serves rare multi-statement
        # work (it runs the sync body on a sync connection in a thread).
        return await asyncio.to_thread(_django_transaction, body)

    async def close(self) -> None:
        if self._writer is not None and not self._writer.done():
            await self._writer  # what was queued is written before the pool closes
        await self._release_writer_connection()
        if self._opened:
            await self._pool.close()


def _django_transaction(body: Callable[[Cursor], T]) -> T:
    from django.db import close_old_connections, connection, transaction

    close_old_connections()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            return body(Cursor(cursor, lambda sql: sql))
    finally:
        connection.close()


class ThreadedDjangoDatabase(Database):
    """Fallback for vendors without an async driver here (MySQL): correct, not the fastest."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor

    async def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        return await self.transaction(lambda cur: (cur.execute(sql, params), cur.fetchone())[1])

    async def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return await self.transaction(lambda cur: (cur.execute(sql, params), cur.fetchall())[1])

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self.transaction(lambda cur: cur.execute(sql, params))

    async def transaction(self, body: Callable[[Cursor], T]) -> T:
        return await asyncio.to_thread(_django_transaction, body)


def _postgres_conninfo(db: dict[str, Any]) -> str:
    from psycopg.conninfo import make_conninfo

    parts = {
        "dbname": db.get("NAME") or "",
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": str(db.get("PORT")) if db.get("PORT") else None,
    }
    return make_conninfo("", **{k: v for k, v in parts.items() if v})


_database: Database | None = None


def get_database() -> Database:
    global _database
    if _database is None:
        from .db_sqlite import SQLiteDatabase  # here, not per call: an import statement costs a few us

        db = settings.DATABASES["default"]
        engine = db["ENGINE"]
        if engine.endswith("sqlite3"):
            _database = SQLiteDatabase(str(db["NAME"]), settings.SQLITE_BUSY_TIMEOUT_MS)
        elif engine.endswith("postgresql"):
            _database = PostgresDatabase(
                _postgres_conninfo(db), settings.SQL_MAX_OPEN_CONNS, settings.SQL_RELAY_SYNCHRONOUS_COMMIT
            )
        else:
            _database = ThreadedDjangoDatabase(engine.rsplit(".", 1)[-1])
    return _database


async def close_database() -> None:
    global _database
    if _database is not None:
        await _database.close()
        _database = None
