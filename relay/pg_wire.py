"""Prepared statements sent straight over the connection's libpq handle (the ledger's writes).

Why not `await conn.execute(sql, params)`: psycopg builds a cursor, converts the query's
placeholders, consults its prepared-statement cache, dumps each parameter through its adapters
and loads the result through a transformer. That costs ~115-125 us of CPU per statement here;
the same round trip driven on `conn.pgconn` (libpq's PQsendQueryPrepared, parameters as text)
costs ~55-70 us (measured here, 5,000 statements, uvloop). At low load a request's hold and
settle each go out alone, so this is ~0.1 ms of the ~1 ms a request costs.

Only statements known in advance go this way (`Prepared`: fixed text, one typed parameter per
`$n`), on the PostgreSQL writer's own connection, which no one else uses meanwhile. Each
connection prepares each statement once (libpq's extended protocol:
https://www.postgresql.org/docs/current/libpq-async.html). A batch of them goes out in libpq's
pipeline mode closed by one Sync (`Wire.run_batch`): one round trip, one transaction
(https://www.postgresql.org/docs/current/libpq-pipeline-mode.html). A connection that was cut,
or left mid-exchange by a cancellation, is closed, so the pool replaces it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# https://www.postgresql.org/docs/current/datatype-oid.html (pg_type.oid of the built-in types)
_TYPE_OIDS = {"boolean": 16, "bigint": 20, "smallint": 21, "integer": 23, "text": 25, "timestamptz": 1184, "jsonb[]": 3807}
JSONB_ARRAY_OID = _TYPE_OIDS["jsonb[]"]
_INTEGER_OIDS = frozenset((20, 21, 23))
_BOOLEAN_OID = 16
# libpq's result statuses and the SQLSTATE field code (https://www.postgresql.org/docs/current/libpq-exec.html),
# as numbers: psycopg is imported only where it is needed (importing it costs a worker ~25 MiB,
# and a gateway on SQLite never needs it), and this module is imported by every ledger.
_COMMAND_OK, _TUPLES_OK, _FATAL_ERROR, _PIPELINE_SYNC = 1, 2, 7, 10
_SQLSTATE = ord("C")
_NO_SUCH_STATEMENT = b"26000"  # invalid_sql_statement_name


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement with a fixed text whose parameters are `$1::type`, `$2::type`, ... .

    The explicit casts keep the text valid with any declared parameter types (EXPLAIN, tests)."""

    name: bytes
    sql: str
    types: tuple[int, ...]


def prepared(name: str, template: str, fields: Sequence[tuple[str, str]]) -> Prepared:
    """`template` writes each parameter as `{field}`; `fields` are (name, SQL type) in the
    order the parameters are given."""
    placeholders = {field: f"${i}::{sql_type}" for i, (field, sql_type) in enumerate(fields, 1)}
    return Prepared(name.encode(), template.format(**placeholders), tuple(_TYPE_OIDS[t] for _, t in fields))


def text_value(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text input format."""
    if value is None:
        return None
    if value is True or value is False:  # before int: bool is an int
        return b"t" if value else b"f"
    if isinstance(value, str):
        if "\x00" in value:  # libpq reads text parameters up to a NUL: refuse, as psycopg does
            from psycopg import DataError

            raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        return value.encode()
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, datetime):
        return value.isoformat().encode()  # ISO 8601 with its offset: timestamptz input
    raise TypeError(f"no text form for a {type(value).__name__} parameter")


# The statements each open connection has prepared (a connection forgets them when it closes;
# kept across a connection's trips back to the pool).
_prepared_on: weakref.WeakKeyDictionary[Any, set[bytes]] = weakref.WeakKeyDictionary()


class Wire:
    """Prepared statements on one connection, whose socket stays watched between them.

    Why watched throughout: uvloop makes a poll handle at each `add_reader` of a socket it does
    not own and drops it at `remove_reader`, ~8 system calls a wait (epoll_ctl add, del and
    retries, ioctl FIONBIO, io_uring_enter; strace on a worker), two waits a request at low
    load. So the reader is added once and removed by `unwatch`, which must run before psycopg
    uses the connection again (its own waits replace and then remove the reader) and before the
    connection goes back to the pool or is closed (a closed socket's number is soon reused).
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._fd = conn.pgconn.socket
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None

    async def execute(self, statement: Prepared, params: Sequence[Any], *, again: bool = True) -> list[tuple[Any, ...]]:
        """Run `statement` (the connection idle, autocommit) and return its rows (integers,
        booleans and text decoded). A statement error is raised as psycopg's class for its SQLSTATE."""
        values = [text_value(v) for v in params]  # a bad parameter fails before anything is sent
        pgconn = self.conn.pgconn
        names = _prepared_on.setdefault(self.conn, set())
        try:
            if self._loop is None:
                self._watch()
            if statement.name not in names:
                pgconn.send_prepare(statement.name, statement.sql.encode(), statement.types)
                _raise_if_failed(await self._result())
                names.add(statement.name)
            pgconn.send_query_prepared(statement.name, values)
            result = await self._result()
        except BaseException:
            await self._abandon()
            raise
        if again and result.status == _FATAL_ERROR and result.error_field(_SQLSTATE) == _NO_SUCH_STATEMENT:
            names.discard(statement.name)  # deallocated behind our back (DISCARD ALL): prepare it again
            return await self.execute(statement, params, again=False)
        _raise_if_failed(result)
        return _rows(result)

    async def run_batch(self, statements: Sequence[tuple[Prepared, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        """Run `statements` in one pipeline closed by one Sync, and return each one's rows.

        The server runs what is between two Syncs as one implicit transaction: the Sync commits
        it, or after the first error it skips the rest and rolls back the whole, and that error
        is raised here (nothing was committed). No BEGIN or COMMIT goes out, and it is one round
        trip. https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
        """
        encoded = [(statement, [text_value(v) for v in params]) for statement, params in statements]  # before sending
        pgconn = self.conn.pgconn
        names = _prepared_on.setdefault(self.conn, set())
        sent: list[bytes | None] = []  # per result to come: the name of a statement prepared here, or None
        try:
            if self._loop is None:
                self._watch()
            pgconn.enter_pipeline_mode()
            for statement, values in encoded:
                if statement.name not in names and statement.name not in sent:
                    pgconn.send_prepare(statement.name, statement.sql.encode(), statement.types)
                    sent.append(statement.name)
                pgconn.send_query_prepared(statement.name, values)
                sent.append(None)
            pgconn.pipeline_sync()
            results = await self._pipeline_results()
            pgconn.exit_pipeline_mode()
        except BaseException:
            await self._abandon()
            raise
        failed = None
        rows = []
        for prepared_name, result in zip(sent, results, strict=True):
            if result.status not in (_COMMAND_OK, _TUPLES_OK):
                failed = failed or result  # the first error; the rest were skipped (PIPELINE_ABORTED)
            elif prepared_name is not None:
                names.add(prepared_name)  # a statement stays prepared even if the transaction rolls back
            else:
                rows.append(_rows(result))
        if failed is not None:
            if failed.error_field(_SQLSTATE) == _NO_SUCH_STATEMENT:
                names.clear()  # deallocated behind our back: the writes, run again alone, prepare anew
            _raise_if_failed(failed)
        return rows

    async def _abandon(self) -> None:
        """Cut, or cancelled mid-exchange: its state is unknown, so nobody may use it again."""
        _prepared_on.pop(self.conn, None)
        self.unwatch()
        await self.conn.close()

    def unwatch(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop = None

    def _watch(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        if self._waiter is not None:
            if not self._waiter.done():
                self._waiter.set_result(None)
            return
        # Readable between statements: the server closed the connection (a restart, an idle
        # timeout) or sent a notice. Reading it stops epoll reporting it; a connection found
        # closed is left closed (`conn.closed`), and the writer takes another.
        try:
            self.conn.pgconn.consume_input()
        except Exception:
            self.unwatch()

    async def _result(self) -> Any:
        """Flush what was sent, then read results until libpq has none left; the last one
        counts (a single statement gives one)."""
        pgconn = self.conn.pgconn
        await self._flush()
        last = None
        while True:
            await self._until_not_busy()
            result = pgconn.get_result()
            if result is None:
                break
            last = result
        if last is None:
            from psycopg import OperationalError

            raise OperationalError(pgconn.get_error_message())
        return last

    async def _pipeline_results(self) -> list[Any]:
        """Flush a pipeline, then read one result per command sent, up to its Sync. (libpq
        ends each command's results with a None; two in a row mean nothing more will come.)"""
        pgconn = self.conn.pgconn
        await self._flush()
        results: list[Any] = []
        ended = False
        while True:
            await self._until_not_busy()
            result = pgconn.get_result()
            if result is None:
                if ended:
                    from psycopg import OperationalError

                    raise OperationalError(pgconn.get_error_message() or "the pipeline ended before its Sync")
                ended = True
                continue
            ended = False
            if result.status == _PIPELINE_SYNC:
                return results
            results.append(result)

    async def _flush(self) -> None:
        while self.conn.pgconn.flush():
            await _writable(self._fd)

    async def _until_not_busy(self) -> None:
        pgconn = self.conn.pgconn
        while pgconn.is_busy():
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
            pgconn.consume_input()


async def _writable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    loop.add_writer(fd, _wake, waiter)
    try:
        await waiter
    finally:
        loop.remove_writer(fd)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _raise_if_failed(result: Any) -> None:
    if result.status not in (_COMMAND_OK, _TUPLES_OK):
        from psycopg import errors

        raise errors.error_from_result(result)


def _rows(result: Any) -> list[tuple[Any, ...]]:
    columns = range(result.nfields)
    loaders = [_loader(result.ftype(j)) for j in columns]
    rows = []
    for i in range(result.ntuples):
        rows.append(tuple(None if (v := result.get_value(i, j)) is None else loaders[j](v) for j in columns))
    return rows


def _loader(oid: int) -> Any:
    if oid in _INTEGER_OIDS:
        return int
    if oid == _BOOLEAN_OID:
        return lambda v: v == b"t"
    return lambda v: v.decode()
