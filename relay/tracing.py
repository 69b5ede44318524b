"""Per-request trace (timings) and metrics, recorded when a relay request ends.

A trace row holds when the request was received and, in milliseconds after that, when it was
forwarded upstream, when the upstream's first byte and last byte arrived, when the client got
its first byte, and when it completed, plus how many retries it took. Times are those of the
attempt that answered. Rows are linked to the consume log by request id.

Writing is kept off the request: rows go to an in-memory list (bounded; beyond it they are
dropped and counted) that a background task inserts every FLUSH_SECONDS as multi-row INSERTs,
and once more at shutdown. Losing the last second of traces on a crash is the accepted price.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from oneapi_site import conf

from . import metrics
from .db import get_database

if TYPE_CHECKING:
    from .asgi_io import Responder
    from .context import RelayContext
    from .errors import RelayError

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
MAX_PENDING = 20_000

_COLUMNS = (
    "request_id", "created_at", "user_id", "api_key_id", "channel_id", "model", "caller_format", "is_stream",
    "status_code", "retries", "forwarded_ms", "upstream_first_byte_ms", "upstream_done_ms", "first_client_byte_ms",
    "completed_ms", "error",
)  # fmt: skip


class RequestRecord:
    """What the app knows about one request besides its RelayContext (which may never exist)."""

    __slots__ = ("received", "received_wall", "ctx", "error")

    def __init__(self) -> None:
        self.received = time.monotonic()
        self.received_wall = time.time()
        self.ctx: RelayContext | None = None
        self.error: RelayError | None = None


def _ms(mark: float, start: float) -> float | None:
    return round((mark - start) * 1000, 2) if mark else None


class TraceWriter:
    def __init__(self) -> None:
        self._rows: list[tuple[Any, ...]] = []
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def add(self, row: tuple[Any, ...]) -> None:
        if len(self._rows) >= MAX_PENDING:
            self.dropped += 1
            return
        self._rows.append(row)

    def start(self) -> None:
        if self._task is None and conf.settings.RELAY_TRACE_ENABLED:
            self._task = asyncio.create_task(self._run(), name="relay-trace-writer")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception:  # a database hiccup loses that batch, not the writer
                logger.exception("could not write request traces")

    async def flush(self) -> int:
        rows, self._rows = self._rows, []
        if not rows:
            return 0
        db = get_database()
        stamped = [(row[0], db.timestamp(datetime.fromtimestamp(row[1], UTC)), *row[2:]) for row in rows]
        await db.insert_rows("traces", _COLUMNS, stamped)
        return len(rows)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        try:
            await self.flush()
        except Exception:
            logger.exception("could not write the last request traces")


writer = TraceWriter()


def finish_request(record: RequestRecord, out: Responder, fmt: str) -> None:
    """Metrics and the trace of a finished request. Never raises: the answer is already out."""
    try:
        now = time.monotonic()
        ctx = record.ctx
        channel = ctx.channel if ctx is not None else None
        model = ctx.model if ctx is not None and channel is not None else ""
        channel_id = str(channel.id) if channel is not None else ""
        status = out.status or 499  # nothing sent: the client left first (nginx's 499)
        error = record.error
        retries = max(len(ctx.tried) - 1, 0) if ctx is not None else 0
        first_byte = out.first_byte_at - record.received if out.first_byte_at else None
        if out.stream_opened:
            metrics.stream_closed()
        metrics.observe_request(
            fmt, model, channel_id, status, now - record.received, first_byte,
            (error.code or error.type) if error is not None else None, retries,
        )
        if ctx is None or not conf.settings.RELAY_TRACE_ENABLED:
            return
        start = record.received
        writer.add(
            (
                ctx.request_id,
                record.received_wall,
                ctx.key.user_id,
                ctx.key.key_id,
                channel.id if channel is not None else None,
                ctx.model[:128],
                fmt,
                ctx.is_stream,
                status,
                retries,
                _ms(ctx.forwarded_at, start),
                _ms(ctx.upstream_first_byte_at, start),
                _ms(ctx.upstream_done_at, start),
                _ms(out.first_byte_at, start),
                _ms(now, start),
                error.message[:500] if error is not None else "",
            )
        )
    except Exception:
        logger.exception("could not record the end of request %s", out.request_id)
