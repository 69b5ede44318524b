"""Drop the `varchar_pattern_ops` twins that Django gives indexed CharFields on PostgreSQL.

Django makes one beside every indexed or unique varchar column (`<index>_like`) to serve
`LIKE 'prefix%'`. No query here filters these columns by prefix (log searches use exact
matches or `icontains`, which no B-tree serves), but every relay request paid for them: one
more B-tree insert each in logs (model_name, request_id, username) and traces (request_id), and
two in request_charges (request_id: its insert and its non-HOT settle). Django drops them with
`DROP INDEX IF EXISTS` when such a field changes later, so their absence is safe.
https://www.postgresql.org/docs/current/indexes-opclass.html
"""

from django.db import migrations

TABLES = ["logs", "request_charges", "traces"]


def drop_pattern_ops_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # only PostgreSQL gets them
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ANY(%s)"
            " AND indexdef LIKE %s",
            [TABLES, "%varchar_pattern_ops%"],
        )
        names = [row[0] for row in cursor.fetchall()]
    for name in names:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_fewer_hot_indexes"),
        ("relay", "0004_traces"),
    ]

    # Backwards: nothing to restore that any query used.
    operations = [migrations.RunPython(drop_pattern_ops_indexes, migrations.RunPython.noop)]
