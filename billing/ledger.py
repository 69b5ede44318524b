"""Hold, settle and refund quota as a few raw statements (the relay's accounting).

- hold: conditional decrements of the key's and the user's quota (never below zero, only
  while both are enabled) plus a `request_charges` row in state HELD.
- settle: flips that row HELD -> SETTLED/REFUNDED exactly once (the request id is unique), and
  only then applies final-minus-held to key and user, adds usage to the counters and the
  channel, and writes the consume log row. A retried or repeated settle changes nothing.

On PostgreSQL each operation is one statement (data-modifying CTEs), so it is atomic and costs
one round trip; on SQLite the same steps run in one BEGIN IMMEDIATE transaction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

from relay.db import WRITE_LOCK_CTE, Cursor, Database

from . import batch as batching

HELD, SETTLED, REFUNDED = 1, 2, 3
LOG_CONSUME, LOG_ERROR = 2, 8


class HoldOutcome(enum.Enum):
    OK = "ok"
    KEY_REFUSED = "key"  # key disabled, deleted or without enough quota
    USER_REFUSED = "user"  # user disabled or without enough quota


@dataclass(frozen=True, slots=True)
class Hold:
    request_id: str
    user_id: int
    key_id: int
    quota: int


@dataclass(slots=True)
class Settlement:
    request_id: str
    user_id: int
    key_id: int
    channel_id: int | None
    quota: int
    refund: bool = False
    write_log: bool = True
    username: str = ""
    key_name: str = ""
    model_name: str = ""
    upstream_model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    elapsed_ms: int = 0
    is_stream: bool = False
    status_code: int = 200
    content: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


# ----------------------------------------------------------------------------- portable steps

_HOLD_KEY = (
    "UPDATE api_keys SET remain_quota = remain_quota - CASE WHEN unlimited_quota THEN 0 ELSE %s END"
    " WHERE id = %s AND status = 1 AND (unlimited_quota OR remain_quota >= %s)"
)
_HOLD_USER = "UPDATE users SET quota = quota - %s WHERE id = %s AND status = 1 AND quota >= %s"
_EXTEND_CHARGE = "UPDATE request_charges SET held_quota = held_quota + %s WHERE request_id = %s AND status = 1"
_INSERT_CHARGE = (
    "INSERT INTO request_charges (request_id, user_id, api_key_id, held_quota, quota, status, created_at)"
    " VALUES (%s, %s, %s, %s, 0, 1, %s)"
)
_CLAIM_CHARGE_SELECT = "SELECT held_quota FROM request_charges WHERE request_id = %s AND status = 1"
_CLAIM_CHARGE_UPDATE = "UPDATE request_charges SET status = %s, quota = %s, settled_at = %s WHERE request_id = %s AND status = 1"
_SETTLE_KEY = (
    "UPDATE api_keys SET remain_quota = remain_quota - CASE WHEN unlimited_quota THEN 0 ELSE %s END,"
    " used_quota = used_quota + %s, accessed_at = %s WHERE id = %s"
)
_SETTLE_USER = (
    "UPDATE users SET quota = quota - %s, used_quota = used_quota + %s, request_count = request_count + %s WHERE id = %s"
)
_SETTLE_CHANNEL = "UPDATE channels SET used_quota = used_quota + %s WHERE id = %s"
_LOG_COLUMNS = (
    "created_at, type, user_id, username, api_key_id, token_name, model_name, upstream_model, channel_id,"
    " prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens, quota,"
    " elapsed_ms, is_stream, request_id, status_code, content"
)
_INSERT_LOG = f"INSERT INTO logs ({_LOG_COLUMNS}) VALUES ({', '.join(['%s'] * 20)})"


def _log_params(s: Settlement) -> tuple[object, ...]:
    return (
        s.created_at,
        LOG_ERROR if s.refund else LOG_CONSUME,
        s.user_id,
        s.username,
        s.key_id,
        s.key_name,
        s.model_name,
        s.upstream_model,
        s.channel_id,
        s.prompt_tokens,
        s.completion_tokens,
        s.cached_tokens,
        s.cache_write_tokens,
        s.cache_write_1h_tokens,
        s.quota,
        s.elapsed_ms,
        s.is_stream,
        s.request_id,
        s.status_code,
        s.content,
    )


def _hold_steps(cur: Cursor, h: Hold, now: object, extend: bool) -> HoldOutcome:
    if cur.execute(_HOLD_KEY, (h.quota, h.key_id, h.quota)) != 1:
        raise _Refused(HoldOutcome.KEY_REFUSED)
    if cur.execute(_HOLD_USER, (h.quota, h.user_id, h.quota)) != 1:
        raise _Refused(HoldOutcome.USER_REFUSED)
    if extend:
        if cur.execute(_EXTEND_CHARGE, (h.quota, h.request_id)) != 1:
            raise _Refused(HoldOutcome.KEY_REFUSED)  # already settled: nothing left to extend
    else:
        cur.execute(_INSERT_CHARGE, (h.request_id, h.user_id, h.key_id, h.quota, now))
    return HoldOutcome.OK


class _Refused(Exception):
    def __init__(self, outcome: HoldOutcome) -> None:
        self.outcome = outcome


def _settle_steps(cur: Cursor, s: Settlement) -> bool:
    cur.execute(_CLAIM_CHARGE_SELECT, (s.request_id,))
    row = cur.fetchone()
    if row is None:
        return False
    held = int(row[0])
    status = REFUNDED if s.refund else SETTLED
    if cur.execute(_CLAIM_CHARGE_UPDATE, (status, s.quota, s.created_at, s.request_id)) != 1:
        return False
    delta = s.quota - held
    cur.execute(_SETTLE_KEY, (delta, s.quota, s.created_at, s.key_id))
    cur.execute(_SETTLE_USER, (delta, s.quota, 0 if s.refund else 1, s.user_id))
    if s.channel_id is not None and s.quota:
        cur.execute(_SETTLE_CHANNEL, (s.quota, s.channel_id))
    if s.write_log:
        cur.execute(_INSERT_LOG, _log_params(s))
    return True


# ----------------------------------------------------------------------------- PostgreSQL: one statement each

# Each statement takes the relay's write lock before its first row lock (relay/db.py
# WRITE_LOCK_CTE): it may run alone, outside a batch that took the lock for it.
_PG_HOLD_HEAD = (
    f"WITH {WRITE_LOCK_CTE}, k AS (" + _HOLD_KEY + " AND EXISTS (SELECT 1 FROM _w) RETURNING id),"
    " u AS (UPDATE users SET quota = quota - %s WHERE id = %s AND status = 1 AND quota >= %s"
    " AND EXISTS (SELECT 1 FROM k) RETURNING id),"
)
_PG_HOLD_TAIL = " SELECT (SELECT count(*) FROM k), (SELECT count(*) FROM u), (SELECT count(*) FROM c)"
_PG_HOLD = (
    _PG_HOLD_HEAD
    + " c AS (INSERT INTO request_charges (request_id, user_id, api_key_id, held_quota, quota, status, created_at)"
    " SELECT %s, %s, %s, %s, 0, 1, %s WHERE EXISTS (SELECT 1 FROM u) RETURNING id)"
    + _PG_HOLD_TAIL
)
_PG_EXTEND = (
    _PG_HOLD_HEAD
    + " c AS (UPDATE request_charges SET held_quota = held_quota + %s WHERE request_id = %s AND status = 1"
    " AND EXISTS (SELECT 1 FROM u) RETURNING id)"
    + _PG_HOLD_TAIL
)
# One row each: without a second lock to wait for they cannot deadlock, so no write lock.
_PG_UNHOLD_USER = "UPDATE users SET quota = quota + %s WHERE id = %s"
_PG_UNHOLD_KEY = (
    "UPDATE api_keys SET remain_quota = remain_quota + CASE WHEN unlimited_quota THEN 0 ELSE %s END WHERE id = %s"
)


def _pg_settle_sql(write_log: bool, has_channel: bool) -> str:
    # Each later step reads a count of the previous one, which makes PostgreSQL run them in
    # order (key, then user): the same lock order as holds, so the two never deadlock.
    sql = (
        f"WITH {WRITE_LOCK_CTE}, c AS (UPDATE request_charges SET status = %s, quota = %s, settled_at = %s"
        " WHERE request_id = %s AND status = 1 AND EXISTS (SELECT 1 FROM _w) RETURNING held_quota),"
        " k AS (UPDATE api_keys SET remain_quota = remain_quota - CASE WHEN unlimited_quota THEN 0"
        " ELSE %s - c.held_quota END, used_quota = used_quota + %s, accessed_at = %s FROM c"
        " WHERE api_keys.id = %s RETURNING 1),"
        " u AS (UPDATE users SET quota = quota - (%s - c.held_quota), used_quota = used_quota + %s,"
        " request_count = request_count + %s FROM c WHERE users.id = %s AND (SELECT count(*) FROM k) >= 0 RETURNING 1)"
    )
    if has_channel:
        sql += ", ch AS (UPDATE channels SET used_quota = used_quota + %s FROM c WHERE channels.id = %s RETURNING 1)"
    if write_log:
        sql += f", l AS (INSERT INTO logs ({_LOG_COLUMNS}) SELECT {', '.join(['%s'] * 20)} FROM c RETURNING 1)"
    return sql + " SELECT count(*) FROM c"


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def hold(self, h: Hold) -> HoldOutcome:
        """Hold `h.quota` for a new request (creates its charge row)."""
        return await self._hold(h, extend=False)

    async def extend_hold(self, h: Hold) -> HoldOutcome:
        """Hold `h.quota` more for a request already under way (a stream outgrowing its estimate)."""
        return await self._hold(h, extend=True)

    async def _hold(self, h: Hold, *, extend: bool) -> HoldOutcome:
        now = self.db.timestamp(datetime.now(UTC))
        if self.db.vendor == "postgresql":
            head = (h.quota, h.key_id, h.quota, h.quota, h.user_id, h.quota)
            if extend:
                row = await self.db.write(_PG_EXTEND, (*head, h.quota, h.request_id))
            else:
                row = await self.db.write(_PG_HOLD, (*head, h.request_id, h.user_id, h.key_id, h.quota, now))
            key_ok, user_ok, charged = row if row else (0, 0, 0)
            if charged:
                return HoldOutcome.OK
            if user_ok:  # only when extending a charge that was settled meanwhile
                await self.db.write(_PG_UNHOLD_USER + " RETURNING id", (h.quota, h.user_id))
            if key_ok:  # the key was debited but the user could not be: give it back
                await self.db.write(_PG_UNHOLD_KEY + " RETURNING id", (h.quota, h.key_id))
                return HoldOutcome.KEY_REFUSED if user_ok else HoldOutcome.USER_REFUSED
            return HoldOutcome.KEY_REFUSED

        def body(cur: Cursor) -> HoldOutcome:
            return _hold_steps(cur, h, now, extend)

        try:
            return await self.db.transaction(body)
        except _Refused as refused:
            return refused.outcome

    async def settle(self, s: Settlement) -> bool:
        """Apply the final cost once. Returns False if this request was already settled."""
        s.created_at = self.db.timestamp(s.created_at)  # type: ignore[assignment]
        if batching.enabled():
            return await self._settle_batched(s)
        if self.db.vendor == "postgresql":
            has_channel = s.channel_id is not None and s.quota != 0
            params: list[object] = [REFUNDED if s.refund else SETTLED, s.quota, s.created_at, s.request_id]
            params += [s.quota, s.quota, s.created_at, s.key_id]
            params += [s.quota, s.quota, 0 if s.refund else 1, s.user_id]
            if has_channel:
                params += [s.quota, s.channel_id]
            if s.write_log:
                params += list(_log_params(s))
            row = await self.db.write(_pg_settle_sql(s.write_log, has_channel), params)
            return bool(row and row[0])
        return await self.db.transaction(lambda cur: _settle_steps(cur, s))

    async def _settle_batched(self, s: Settlement) -> bool:
        """Claim the charge and write the log now; leave the counters to billing.batch."""
        if self.db.vendor == "postgresql":
            params: list[object] = [REFUNDED if s.refund else SETTLED, s.quota, s.created_at, s.request_id]
            if s.write_log:
                params += list(_log_params(s))
            row = await self.db.write(_pg_claim_sql(s.write_log), params)
            held = None if row is None else int(row[0])
        else:
            held = await self.db.transaction(lambda cur: _claim_steps(cur, s))
        if held is None:
            return False
        batching.batch.add(s, s.quota - held)
        return True


def _claim_steps(cur: Cursor, s: Settlement) -> int | None:
    cur.execute(_CLAIM_CHARGE_SELECT, (s.request_id,))
    row = cur.fetchone()
    if row is None:
        return None
    status = REFUNDED if s.refund else SETTLED
    if cur.execute(_CLAIM_CHARGE_UPDATE, (status, s.quota, s.created_at, s.request_id)) != 1:
        return None
    if s.write_log:
        cur.execute(_INSERT_LOG, _log_params(s))
    return int(row[0])


def _pg_claim_sql(write_log: bool) -> str:
    sql = (
        f"WITH {WRITE_LOCK_CTE}, c AS (UPDATE request_charges SET status = %s, quota = %s, settled_at = %s"
        " WHERE request_id = %s AND status = 1 AND EXISTS (SELECT 1 FROM _w) RETURNING held_quota)"
    )
    if write_log:
        sql += f", l AS (INSERT INTO logs ({_LOG_COLUMNS}) SELECT {', '.join(['%s'] * 20)} FROM c RETURNING 1)"
    return sql + " SELECT held_quota FROM c"
