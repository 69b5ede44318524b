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

from billing.models import ConsumeLog
from billing.services import stale_holds


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
