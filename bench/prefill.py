"""Give the benchmark's database a history: N settled charges and N consume log rows.

Run by bench/servers.py with the gateway's environment (`python bench/prefill.py N`); prints
the highest log id, below which the billing check does not count. A production gateway holds
months of logs, and what a request costs the database grows with its tables and indexes: a
benchmark on an empty database would flatter it.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import django

django.setup()

from django.db import connection, transaction  # noqa: E402

CHARGE = (
    "INSERT INTO request_charges (request_id, user_id, api_key_id, held_quota, quota, status, created_at, settled_at)"
    " SELECT 'prefill-' || i, 1, 1, 100, 90, 2, %s, %s FROM {rows}"
)
LOG = (
    "INSERT INTO logs (created_at, type, user_id, username, api_key_id, token_name, model_name, upstream_model,"
    " channel_id, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens, quota,"
    " elapsed_ms, is_stream, request_id, status_code, content)"
    " SELECT %s, 2, 1, 'root', 1, 'prefill', 'gpt-4o-mini', 'gpt-4o-mini', 1, 12, 30, 0, 0, 0, 90, 5, false,"
    " 'prefill-' || i, 200, '' FROM {rows}"
)


def prefill(count: int) -> int:
    when = connection.ops.adapt_datetimefield_value(datetime(2026, 1, 1, tzinfo=UTC))
    with transaction.atomic(), connection.cursor() as cur:
        if connection.vendor == "sqlite":  # no generate_series: a recursive CTE counts instead
            head = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "
            cur.execute(head + CHARGE.format(rows="n"), [count, when, when])
            cur.execute(head + LOG.format(rows="n"), [count, when])
        else:
            rows = "generate_series(1, %s) AS n(i)"
            cur.execute(CHARGE.format(rows=rows), [when, when, count])
            cur.execute(LOG.format(rows=rows), [when, count])
        cur.execute("SELECT max(id) FROM logs")
        return int(cur.fetchone()[0])


if __name__ == "__main__":
    print(prefill(int(sys.argv[1])))
