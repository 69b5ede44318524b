"""Health endpoints for load balancers and Kubernetes probes (no authentication, no rate limit).

- GET /healthz: ready to serve: the database answers and the cache (Redis when configured)
  stores and returns a value. 200 {"status": "ok", ...} or 503 naming what failed.
- GET /livez: the process answers (liveness must not fail because the database is down, or
  every pod restarts at once during a database outage).
"""

from __future__ import annotations

import secrets
import time

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_cache() -> str:
    nonce = secrets.token_hex(8)
    cache.set("healthz", nonce, timeout=10)
    if cache.get("healthz") != nonce:
        raise RuntimeError("the cache did not return what was stored")
    return "ok"


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    healthy = True
    started = time.monotonic()
    for name, check in (("database", _check_database), ("cache", _check_cache)):
        try:
            checks[name] = check()
        except Exception as exc:  # any failure is "not ready", with its reason
            checks[name] = f"fail: {exc.__class__.__name__}: {exc}"[:300]
            healthy = False
    body = {"status": "ok" if healthy else "fail", "checks": checks, "ms": round((time.monotonic() - started) * 1000, 1)}
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
def livez(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
