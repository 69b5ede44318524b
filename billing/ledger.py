"""Hold, settle and refund quota as a few raw statements (the relay's accounting).

- hold: conditional decrements of the key's and the user's quota (never below zero, only
  while both are enabled) plus a `request_charges` row in state HELD.
- settle: flips that row HELD -> SETTLED/REFUNDED exactly once (the request id is unique), and
  only then applies final-minus-held to key and user, adds usage to the counters and the
  channel, and writes the consume log row. A retried or repeated settle changes nothing.

On PostgreSQL each operation is one statement (data-modifying CTEs), so it is atomic, and the
holds (and the settles) queued together are one statement over arrays (relay/db.py `Combined`);
on SQLite the same steps run in one BEGIN IMMEDIATE transaction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

from relay.db import WRITE_LOCK_CTE, Combined, Cursor, Database, combined_rows
from relay.pg_wire import prepared

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

# A charge still held, where a statement finds it by its request id. Not `status = 1`: that
# implies the predicate of the partial index request_charges_held, which every charge enters at
# its hold and leaves at its settle. Until a vacuum the index keeps those dead entries, while
# ANALYZE (run when they were settled) counts it nearly empty, so PostgreSQL's cached generic
# plan scanned the whole index, filtering on the request id, instead of looking the id up in
# its unique index: 1,600 index entries read per request at c=32 in the benchmark, growing
# until autovacuum (billing/tests/test_hot_indexes.py). `+ 0` makes the test an expression no
# index predicate is proved from (https://www.postgresql.org/docs/current/indexes-partial.html).
_STILL_HELD = f"request_charges.status + 0 = {HELD}"

_HOLD_KEY = (
    "UPDATE api_keys SET remain_quota = remain_quota - CASE WHEN unlimited_quota THEN 0 ELSE %s END"
    " WHERE id = %s AND status = 1 AND (unlimited_quota OR remain_quota >= %s)"
)
_HOLD_USER = "UPDATE users SET quota = quota - %s WHERE id = %s AND status = 1 AND quota >= %s"
_EXTEND_CHARGE = f"UPDATE request_charges SET held_quota = held_quota + %s WHERE request_id = %s AND {_STILL_HELD}"
_INSERT_CHARGE = (
    "INSERT INTO request_charges (request_id, user_id, api_key_id, held_quota, quota, status, created_at)"
    " VALUES (%s, %s, %s, %s, 0, 1, %s)"
)
_CLAIM_CHARGE_SELECT = f"SELECT held_quota FROM request_charges WHERE request_id = %s AND {_STILL_HELD}"
_CLAIM_CHARGE_UPDATE = (
    f"UPDATE request_charges SET status = %s, quota = %s, settled_at = %s WHERE request_id = %s AND {_STILL_HELD}"
)
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

# One hold's fields (name, SQL type), in the order Ledger.hold sends them.
_HOLD_TYPED = (("request_id", "text"), ("user_id", "bigint"), ("key_id", "bigint"), ("quota", "bigint"), ("at", "timestamptz"))
# Holds queued together, in one statement.
# It locks the keys' and then the users' rows (the order every ledger statement keeps) and reads
# their latest committed values (FOR UPDATE does, in READ COMMITTED): the versions the UPDATEs
# below then change. Holds of one key are granted in queue order while their running total fits
# the key's quota, then those of one user while theirs fits the user's, so the key and the user
# are each debited once, by what they granted, and never below zero. Nothing is debited for a
# refused hold. Result per hold: 0 granted, 1 refused by the key, 2 refused by the user.
# https://www.postgresql.org/docs/current/queries-with.html#QUERIES-WITH-MODIFYING
_PG_HOLDS = Combined(
    Combined.statement(
        "oneapi_holds",
        f"WITH {WRITE_LOCK_CTE},"
        " h AS " + combined_rows(_HOLD_TYPED) + ","
        " kl AS (SELECT id, status, unlimited_quota, remain_quota FROM api_keys"
        " WHERE id IN (SELECT key_id FROM h) AND EXISTS (SELECT 1 FROM _w) ORDER BY id FOR UPDATE),"
        " ul AS (SELECT id, status, quota FROM users"
        " WHERE id IN (SELECT user_id FROM h) AND (SELECT count(*) FROM kl) >= 0 ORDER BY id FOR UPDATE),"
        " hk AS (SELECT h.*, coalesce(kl.status = 1 AND (kl.unlimited_quota"
        " OR sum(h.quota) OVER (PARTITION BY h.key_id ORDER BY h.ord) <= kl.remain_quota), false) AS key_ok"
        " FROM h LEFT JOIN kl ON kl.id = h.key_id),"
        " hu AS (SELECT hk.*, hk.key_ok AND coalesce(ul.status = 1 AND sum(CASE WHEN hk.key_ok THEN hk.quota ELSE 0 END)"
        " OVER (PARTITION BY hk.user_id ORDER BY hk.ord) <= ul.quota, false) AS ok FROM hk LEFT JOIN ul ON ul.id = hk.user_id),"
        " k AS (UPDATE api_keys SET remain_quota = remain_quota - CASE WHEN unlimited_quota THEN 0 ELSE d.total END"
        " FROM (SELECT key_id, sum(quota) AS total FROM hu WHERE ok GROUP BY key_id) d WHERE api_keys.id = d.key_id RETURNING 1),"
        " u AS (UPDATE users SET quota = quota - d.total"
        " FROM (SELECT user_id, sum(quota) AS total FROM hu WHERE ok GROUP BY user_id) d WHERE users.id = d.user_id RETURNING 1),"
        " c AS (INSERT INTO request_charges (request_id, user_id, api_key_id, held_quota, quota, status, created_at)"
        " SELECT request_id, user_id, key_id, quota, 0, 1, at FROM hu WHERE ok ORDER BY ord RETURNING 1)"
        " SELECT ord, CASE WHEN ok THEN 0 WHEN key_ok THEN 2 ELSE 1 END FROM hu",
    ),
    lambda fields: (_PG_HOLD_ONE, fields),
)
# A hold queued alone: the same decisions, for one row each (sent by name, see relay/pg_wire.py).
_PG_HOLD_ONE = prepared(
    "oneapi_hold_one",
    f"WITH {WRITE_LOCK_CTE},"
    " kl AS (SELECT status = 1 AND (unlimited_quota OR remain_quota >= {quota}) AS ok FROM api_keys"
    " WHERE id = {key_id} AND EXISTS (SELECT 1 FROM _w) FOR UPDATE),"
    " ul AS (SELECT status = 1 AND quota >= {quota} AS ok FROM users"
    " WHERE id = {user_id} AND (SELECT count(*) FROM kl) >= 0 FOR UPDATE),"
    " g AS (SELECT coalesce((SELECT ok FROM kl), false) AS key_ok, coalesce((SELECT ok FROM ul), false) AS user_ok),"
    " k AS (UPDATE api_keys SET remain_quota = remain_quota - CASE WHEN unlimited_quota THEN 0 ELSE {quota} END"
    " WHERE id = {key_id} AND (SELECT key_ok AND user_ok FROM g) RETURNING 1),"
    " u AS (UPDATE users SET quota = quota - {quota} WHERE id = {user_id} AND (SELECT key_ok AND user_ok FROM g) RETURNING 1),"
    " c AS (INSERT INTO request_charges (request_id, user_id, api_key_id, held_quota, quota, status, created_at)"
    " SELECT {request_id}, {user_id}, {key_id}, {quota}, 0, 1, {at} FROM g WHERE key_ok AND user_ok RETURNING 1)"
    " SELECT 1, CASE WHEN key_ok AND user_ok THEN 0 WHEN key_ok THEN 2 ELSE 1 END FROM g",
    _HOLD_TYPED,
)
_HOLD_OUTCOMES = (HoldOutcome.OK, HoldOutcome.KEY_REFUSED, HoldOutcome.USER_REFUSED)

_SETTLE_FIELDS = (  # what `_pg_settle_fields` sends, in its order
    ("status", "smallint"),
    ("quota", "bigint"),
    ("at", "timestamptz"),
    ("request_id", "text"),
    ("key_id", "bigint"),
    ("user_id", "bigint"),
    ("channel_id", "bigint"),
    ("write_log", "boolean"),
    ("username", "text"),
    ("key_name", "text"),
    ("model_name", "text"),
    ("upstream_model", "text"),
    ("prompt_tokens", "bigint"),
    ("completion_tokens", "bigint"),
    ("cached_tokens", "bigint"),
    ("cache_write_tokens", "bigint"),
    ("cache_write_1h_tokens", "bigint"),
    ("elapsed_ms", "bigint"),
    ("is_stream", "boolean"),
    ("status_code", "integer"),
    ("content", "text"),
)
# Settles queued together, in one statement (fields: `_SETTLE_FIELDS`). Each claims its HELD
# charge once (of two instances for one request, the one `c` returns), then the keys, users and
# channels get the sums of what was claimed, and the claimed ones that log get their rows.
# Result per settle: a row if it claimed its charge, none if it was settled already.
_PG_SETTLES = Combined(
    Combined.statement(
        "oneapi_settles",
        f"WITH {WRITE_LOCK_CTE},"
        " s AS " + combined_rows(_SETTLE_FIELDS) + ","
        " c AS (UPDATE request_charges SET status = s.status, quota = s.quota, settled_at = s.at FROM s"
        f" WHERE request_charges.request_id = s.request_id AND {_STILL_HELD} AND EXISTS (SELECT 1 FROM _w)"
        " RETURNING s.ord, request_charges.held_quota),"
        " j AS (SELECT s.*, c.held_quota FROM s JOIN c USING (ord)),"
        " k AS (UPDATE api_keys SET remain_quota = remain_quota - CASE WHEN unlimited_quota THEN 0 ELSE d.delta END,"
        " used_quota = used_quota + d.used, accessed_at = d.at"
        " FROM (SELECT key_id, sum(quota - held_quota) AS delta, sum(quota) AS used, max(at) AS at FROM j GROUP BY key_id) d"
        " WHERE api_keys.id = d.key_id RETURNING 1),"
        " u AS (UPDATE users SET quota = quota - d.delta, used_quota = used_quota + d.used, request_count = request_count + d.n"
        f" FROM (SELECT user_id, sum(quota - held_quota) AS delta, sum(quota) AS used, count(*) FILTER (WHERE status = {SETTLED})"
        " AS n FROM j GROUP BY user_id) d WHERE users.id = d.user_id AND (SELECT count(*) FROM k) >= 0 RETURNING 1),"
        " ch AS (UPDATE channels SET used_quota = used_quota + d.used FROM (SELECT channel_id, sum(quota) AS used FROM j"
        " WHERE channel_id IS NOT NULL AND quota <> 0 GROUP BY channel_id) d WHERE channels.id = d.channel_id RETURNING 1),"
        f" l AS (INSERT INTO logs ({_LOG_COLUMNS}) SELECT at, CASE WHEN status = {REFUNDED} THEN {LOG_ERROR} ELSE {LOG_CONSUME} END,"
        " user_id, username, key_id, key_name, model_name, upstream_model, channel_id, prompt_tokens, completion_tokens,"
        " cached_tokens, cache_write_tokens, cache_write_1h_tokens, quota, elapsed_ms, is_stream, request_id, status_code,"
        " content FROM j WHERE write_log ORDER BY ord RETURNING 1)"
        " SELECT ord FROM j",
    ),
    lambda fields: (_PG_SETTLE_ONE, fields),
)


# The log row of a settle or claim sent alone (fields: _SETTLE_FIELDS), if its charge `c` was claimed.
_PG_LOG_ONE = (
    f", l AS (INSERT INTO logs ({_LOG_COLUMNS}) SELECT {{at}},"
    f" CASE WHEN {{status}} = {REFUNDED} THEN {LOG_ERROR} ELSE {LOG_CONSUME} END, {{user_id}}, {{username}},"
    " {key_id}, {key_name}, {model_name}, {upstream_model}, {channel_id}, {prompt_tokens}, {completion_tokens},"
    " {cached_tokens}, {cache_write_tokens}, {cache_write_1h_tokens}, {quota}, {elapsed_ms},"
    " {is_stream}, {request_id}, {status_code}, {content} FROM c WHERE {write_log} RETURNING 1)"
)

# A settle queued alone: the same steps, for one row each (sent by name, see relay/pg_wire.py).
# In both settle statements the user step reads a count of the key step, which makes PostgreSQL
# run them in order (key, then user): the same lock order as holds. A settle without a channel
# (NULL matches no row) or of quota 0 adds nothing to a channel; one that does not log inserts
# nothing.
_PG_SETTLE_ONE = prepared(
    "oneapi_settle_one",
    f"WITH {WRITE_LOCK_CTE}, c AS (UPDATE request_charges SET status = {{status}}, quota = {{quota}},"
    f" settled_at = {{at}} WHERE request_id = {{request_id}} AND {_STILL_HELD} AND EXISTS (SELECT 1 FROM _w)"
    " RETURNING held_quota),"
    " k AS (UPDATE api_keys SET remain_quota = remain_quota - CASE WHEN unlimited_quota THEN 0"
    " ELSE {quota} - c.held_quota END, used_quota = used_quota + {quota}, accessed_at = {at} FROM c"
    " WHERE api_keys.id = {key_id} RETURNING 1),"
    " u AS (UPDATE users SET quota = quota - ({quota} - c.held_quota), used_quota = used_quota + {quota},"
    f" request_count = request_count + CASE WHEN {{status}} = {SETTLED} THEN 1 ELSE 0 END"
    " FROM c WHERE users.id = {user_id} AND (SELECT count(*) FROM k) >= 0 RETURNING 1),"
    " ch AS (UPDATE channels SET used_quota = used_quota + {quota} FROM c"
    " WHERE channels.id = {channel_id} AND {quota} <> 0 RETURNING 1)"
    + _PG_LOG_ONE +
    " SELECT 1 FROM c",
    _SETTLE_FIELDS,
)


def _pg_settle_fields(s: Settlement) -> tuple[object, ...]:
    return (
        REFUNDED if s.refund else SETTLED,
        s.quota,
        s.created_at,
        s.request_id,
        s.key_id,
        s.user_id,
        s.channel_id,
        s.write_log,
        s.username,
        s.key_name,
        s.model_name,
        s.upstream_model,
        s.prompt_tokens,
        s.completion_tokens,
        s.cached_tokens,
        s.cache_write_tokens,
        s.cache_write_1h_tokens,
        s.elapsed_ms,
        s.is_stream,
        s.status_code,
        s.content,
    )


# Extending a hold (rare: a stream outgrowing its estimate) is one statement of its own.
_EXTEND_FIELDS = (("quota", "bigint"), ("key_id", "bigint"), ("user_id", "bigint"), ("request_id", "text"))
_PG_EXTEND = prepared(
    "oneapi_extend",
    f"WITH {WRITE_LOCK_CTE}, k AS (UPDATE api_keys SET remain_quota = remain_quota"
    " - CASE WHEN unlimited_quota THEN 0 ELSE {quota} END WHERE id = {key_id} AND status = 1"
    " AND (unlimited_quota OR remain_quota >= {quota}) AND EXISTS (SELECT 1 FROM _w) RETURNING id),"
    " u AS (UPDATE users SET quota = quota - {quota} WHERE id = {user_id} AND status = 1 AND quota >= {quota}"
    " AND EXISTS (SELECT 1 FROM k) RETURNING id),"
    " c AS (UPDATE request_charges SET held_quota = held_quota + {quota} WHERE request_id = {request_id}"
    f" AND {_STILL_HELD} AND EXISTS (SELECT 1 FROM u) RETURNING id)"
    " SELECT (SELECT count(*) FROM k), (SELECT count(*) FROM u), (SELECT count(*) FROM c)",
    _EXTEND_FIELDS,
)
# One row each: without a second lock to wait for they cannot deadlock, so no write lock.
_PG_UNHOLD_USER = prepared(
    "oneapi_unhold_user",
    "UPDATE users SET quota = quota + {quota} WHERE id = {user_id} RETURNING id",
    (("quota", "bigint"), ("user_id", "bigint")),
)
_PG_UNHOLD_KEY = prepared(
    "oneapi_unhold_key",
    "UPDATE api_keys SET remain_quota = remain_quota + CASE WHEN unlimited_quota THEN 0 ELSE {quota} END"
    " WHERE id = {key_id} RETURNING id",
    (("quota", "bigint"), ("key_id", "bigint")),
)
# BATCH_UPDATE_ENABLED: the settle claims its charge and writes its log row; billing.batch
# applies the counters later (fields: _SETTLE_FIELDS; the result is the quota that was held).
_PG_CLAIM_ONE = prepared(
    "oneapi_claim_one",
    f"WITH {WRITE_LOCK_CTE}, c AS (UPDATE request_charges SET status = {{status}}, quota = {{quota}},"
    f" settled_at = {{at}} WHERE request_id = {{request_id}} AND {_STILL_HELD} AND EXISTS (SELECT 1 FROM _w)"
    " RETURNING held_quota)" + _PG_LOG_ONE + " SELECT held_quota FROM c",
    _SETTLE_FIELDS,
)


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
            if not extend:
                row = await self.db.write_combined(_PG_HOLDS, (h.request_id, h.user_id, h.key_id, h.quota, now))
                return _HOLD_OUTCOMES[row[0]] if row else HoldOutcome.KEY_REFUSED
            params = (h.quota, h.key_id, h.user_id, h.request_id)
            key_ok, user_ok, extended = await self.db.write(_PG_EXTEND, params) or (0, 0, 0)
            if extended:
                return HoldOutcome.OK
            if user_ok:  # the charge was settled meanwhile: nothing left to extend
                await self.db.write(_PG_UNHOLD_USER, (h.quota, h.user_id))
            if key_ok:  # the key was debited but the user could not be: give it back
                await self.db.write(_PG_UNHOLD_KEY, (h.quota, h.key_id))
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
            return await self.db.write_combined(_PG_SETTLES, _pg_settle_fields(s)) is not None
        return await self.db.transaction(lambda cur: _settle_steps(cur, s))

    async def _settle_batched(self, s: Settlement) -> bool:
        """Claim the charge and write the log now; leave the counters to billing.batch."""
        if self.db.vendor == "postgresql":
            row = await self.db.write(_PG_CLAIM_ONE, _pg_settle_fields(s))
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
