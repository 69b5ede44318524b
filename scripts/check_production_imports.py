"""Import what the web, worker and beat processes load, with only requirements.txt installed.

The test suite runs in a venv that also holds the test tools (requirements-dev.txt), and they
bring packages of their own: kombu's Redis transport imports `packaging`, which only pytest
had brought in, so a production install with REDIS_CONN_STRING set crashed its Celery worker
and beat at start while every test passed. .ci/run runs this in a venv made from
requirements.txt alone, once per broker, to catch that kind of gap.

Usage: python scripts/check_production_imports.py  (SQL_DSN / REDIS_CONN_STRING as in production)
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oneapi_site.settings")


def main() -> int:
    import django

    django.setup()
    from django.conf import settings
    from kombu.transport import resolve_transport

    from oneapi_site.celery import app

    modules = ["oneapi_site.asgi", "oneapi_site.urls", "relay.app", "billing.ledger", "mcp_app.protocol"]
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        modules.append("psycopg_pool")
    for name in modules:
        importlib.import_module(name)
    # The broker's transport class, as the worker and beat load it at start.
    transport = resolve_transport(app.connection_for_write().transport_cls)
    importlib.import_module(transport.__module__)
    app.loader.import_default_modules()  # every module with tasks
    print(f"production imports ok (broker transport {transport.__module__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
