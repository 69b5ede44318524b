"""/healthz (database and cache) and /livez for probes."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_healthz_checks_database_and_cache():
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["checks"] == {"database": "ok", "cache": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_healthz_fails_when_the_cache_fails(monkeypatch):
    from django.core.cache import cache

    def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(cache, "set", broken)
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail" and body["checks"]["database"] == "ok"
    assert "redis is down" in body["checks"]["cache"]


def test_livez_needs_nothing():
    assert Client().get("/livez").json() == {"status": "ok"}
