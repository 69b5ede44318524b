"""The tables every relay request writes carry only the indexes their readers use.

Each index is one more B-tree insert (and, for request_charges, one more update) per request,
and its pages grow with the table (bench/RESULTS.md: the ledger's cost rises with database
size). These tests make adding one a deliberate change.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from billing.models import ChargeStatus, ConsumeLog
from billing.services import stale_holds
from relay.db import json_array_literal


def index_columns(table: str) -> set[tuple[str, ...]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        tuple(info["columns"])
        for info in constraints.values()
        if (info["index"] or info["unique"]) and not info["primary_key"]
    }


@pytest.mark.django_db
def test_request_charges_indexes_only_request_id_and_open_holds():
    # request_id (unique: finds a charge) and created_at of held rows (the stale-hold sweep).
    assert index_columns("request_charges") == {("request_id",), ("created_at",)}


@pytest.mark.django_db
def test_logs_indexes_have_no_redundant_column():
    columns = index_columns("logs")
    assert ("user_id", "created_at") in columns
    assert ("type",) not in columns  # a handful of values: an index would not narrow a scan
    assert columns <= {
        ("created_at",), ("username",), ("model_name",), ("request_id",), ("api_key_id",), ("channel_id",),
        ("user_id",), ("user_id", "created_at"),
    }  # fmt: skip


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's plan is deterministic on an empty table")
def test_stale_hold_sweep_reads_the_partial_index():
    plan = stale_holds(timezone.now() - timedelta(hours=1)).explain()
    assert "request_charges_held" in plan, plan


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's plan is deterministic on an empty table")
def test_a_users_newest_logs_need_no_sort():
    # Why logs keeps its user_id index: (user_id, rowid) gives a user's page in id order.
    plan = ConsumeLog.objects.filter(user_id=1).order_by("-id")[:20].explain()
    assert "logs_user_id" in plan and "TEMP B-TREE" not in plan, plan


def _generic_plan(sql: str, params: tuple[object, ...]) -> str:
    """The plan PostgreSQL caches for `sql` (placeholders $1..$n) once it goes generic, as a
    prepared statement does after five runs (https://www.postgresql.org/docs/current/sql-prepare.html)."""
    import psycopg

    raw = connection.connection
    with psycopg.ClientCursor(raw) as cur:  # values as literals: EXECUTE takes no bind parameters
        cur.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cur.execute("PREPARE ledger_plan AS " + sql)
        try:
            cur.execute(f"EXPLAIN EXECUTE ledger_plan({', '.join(['%s'] * len(params))})", params)
            return "\n".join(row[0] for row in cur.fetchall())
        finally:
            cur.execute("DEALLOCATE ledger_plan")


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner and its cached generic plans")
def test_settles_find_their_charge_by_request_id_even_when_the_held_index_looks_empty():
    """Every charge enters the partial index of held rows and leaves it at its settle; until a
    vacuum the index keeps the dead entries, while ANALYZE, run when the rows were settled,
    counts it as (nearly) empty. A settle whose WHERE implies the index's predicate (`status = 1`)
    then got a generic plan that scans that whole index and filters on request_id: bench at
    c=32, 1,600 index entries read per request. The settles must look up the unique request id."""
    from billing import ledger

    now = timezone.now()
    with connection.cursor() as cursor:  # a table of some size, where an index lookup is the honest plan
        cursor.execute(
            "INSERT INTO request_charges (request_id, user_id, held_quota, quota, status, created_at)"
            " SELECT 'r' || i, 1, 5, 5, %s, %s FROM generate_series(1, 50000) AS i",
            (ChargeStatus.SETTLED, now),
        )
        cursor.execute("ANALYZE request_charges")
    settle = (2, 5, now, "r1", 1, 1, 1, True, "u", "k", "m", "m", 1, 1, 0, 0, 0, 10, False, 200, "")
    array = json_array_literal([settle, settle])
    plans = {
        "combined settles": _generic_plan(ledger._PG_SETTLES.sql.sql, (array,)),
        "one settle": _generic_plan(ledger._PG_SETTLE_ONE.sql, settle),
        "extend": _generic_plan(ledger._PG_EXTEND.sql, (5, 1, 1, "r1")),
        "batched claim": _generic_plan(ledger._PG_CLAIM_ONE.sql, settle),
    }
    for name, plan in plans.items():
        assert "request_charges_held" not in plan, f"{name}:\n{plan}"
        assert "request_charges_request_id" in plan, f"{name}:\n{plan}"


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="Django adds pattern-ops twins on PostgreSQL only")
def test_tables_written_per_request_have_no_pattern_ops_twins():
    # Django gives each indexed varchar a `varchar_pattern_ops` twin for LIKE 'prefix%', which
    # nothing here runs; billing migration 0005 drops them from the tables every request writes.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN ('logs', 'request_charges', 'traces')"
            " AND indexdef LIKE '%%pattern_ops%%'"
        )
        assert cursor.fetchall() == []
