"""The sliding-window limiter (local and Redis) and the per-IP limits of Django's routes."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client, RequestFactory

from oneapi_site import ratelimit
from oneapi_site.ratelimit import Limit, LocalWindow, SyncRedisWindow, client_ip


def random_ip() -> str:
    value = uuid.uuid4().int
    return f"10.{value % 250}.{(value >> 8) % 250}.{(value >> 16) % 250 + 1}"


@pytest.fixture
def limits_on(settings):
    settings.RATE_LIMIT_DISABLED = False
    settings.TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    settings.TRUSTED_PROXY_HOPS = 1
    settings.RATE_LIMIT_KEY_PREFIX = f"test-{uuid.uuid4().hex}:"
    ratelimit.local_window().clear()
    return settings


def test_local_window_allows_the_limit_then_refuses_until_the_oldest_leaves():
    window = LocalWindow()
    t0 = 1000.0
    decisions = [window.hit("k", 3, 60, now=t0 + i) for i in range(3)]
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    refused = window.hit("k", 3, 60, now=t0 + 10)
    assert not refused.allowed and refused.remaining == 0
    # The first hit (t0) leaves the window about 60 s later (at most one 1 s slot late).
    assert 50 <= refused.reset <= 52
    assert refused.headers()["Retry-After"] == str(int(refused.headers()["RateLimit-Reset"]))
    # Refused requests are not counted: once the oldest left, one more fits.
    assert not window.hit("k", 3, 60, now=t0 + 30).allowed
    assert window.hit("k", 3, 60, now=t0 + 61.5).allowed
    assert not window.hit("k", 3, 60, now=t0 + 61.5).allowed
    # Another key has its own window.
    assert window.hit("other", 3, 60, now=t0 + 10).allowed


def test_local_window_never_lets_more_than_the_limit_through_in_any_window():
    window = LocalWindow()
    allowed: list[float] = []
    for step in range(2000):
        now = step * 0.37
        if window.hit("k", 10, 30, now=now).allowed:
            allowed.append(now)
    for i, start in enumerate(allowed):
        inside = [t for t in allowed[i:] if t < start + 30]
        assert len(inside) <= 10


def test_redis_window_is_exact_and_shared(settings):
    if not settings.REDIS_CONN_STRING:
        pytest.skip("REDIS_CONN_STRING is not set: the Redis limiter is tested on the PostgreSQL + Redis run")
    settings.RATE_LIMIT_KEY_PREFIX = f"test-{uuid.uuid4().hex}:"
    first = SyncRedisWindow(settings.REDIS_CONN_STRING, settings.REDIS_PASSWORD)
    second = SyncRedisWindow(settings.REDIS_CONN_STRING, settings.REDIS_PASSWORD)  # another replica
    results = [(first if i % 2 else second).hit("k", 4, 60) for i in range(6)]
    assert [r.allowed for r in results] == [True, True, True, True, False, False]
    assert [r.remaining for r in results[:4]] == [3, 2, 1, 0]
    assert 58 <= results[4].reset <= 60


def test_client_ip_trusts_only_the_configured_header(settings):
    settings.TRUSTED_PROXY_HEADER = ""
    assert client_ip("1.2.3.4", "127.0.0.1") == "127.0.0.1"
    settings.TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    settings.TRUSTED_PROXY_HOPS = 1
    # The client wrote "6.6.6.6"; the trusted proxy appended the address it saw.
    assert client_ip("6.6.6.6, 1.2.3.4", "127.0.0.1") == "1.2.3.4"
    settings.TRUSTED_PROXY_HOPS = 2
    assert client_ip("6.6.6.6, 1.2.3.4, 10.0.0.2", "127.0.0.1") == "1.2.3.4"
    assert client_ip("1.2.3.4", "127.0.0.1") == "127.0.0.1"  # fewer hops than configured
    settings.TRUSTED_PROXY_HOPS = 1
    assert client_ip("not-an-address", "127.0.0.1") == "127.0.0.1"
    assert client_ip(None, "127.0.0.1") == "127.0.0.1"


def _assert_rate_headers(response, limit: int) -> None:
    assert response.status_code == 429
    assert response["RateLimit-Limit"] == str(limit)
    assert response["RateLimit-Remaining"] == "0"
    assert int(response["RateLimit-Reset"]) >= 1
    assert int(response["Retry-After"]) == int(response["RateLimit-Reset"])


@pytest.mark.django_db
def test_api_limit_per_ip_answers_the_envelope_with_headers(limits_on):
    limits_on.GLOBAL_API_RATE_LIMIT = 3
    client, ip = Client(), random_ip()
    statuses = [client.get("/api/status", HTTP_X_FORWARDED_FOR=ip).status_code for _ in range(3)]
    assert 429 not in statuses
    refused = client.get("/api/status", HTTP_X_FORWARDED_FOR=ip)
    _assert_rate_headers(refused, 3)
    body = refused.json()
    assert body["success"] is False and "too many requests" in body["message"] and body["data"] is None
    # Another address is not affected; neither are the probes.
    assert client.get("/api/status", HTTP_X_FORWARDED_FOR=random_ip()).status_code != 429
    assert client.get("/livez", HTTP_X_FORWARDED_FOR=ip).status_code == 200


@pytest.mark.django_db
def test_web_limit_per_ip_answers_a_page(limits_on):
    limits_on.GLOBAL_WEB_RATE_LIMIT = 2
    client, ip = Client(), random_ip()
    for _ in range(2):
        assert client.get("/no-such-page/", HTTP_X_FORWARDED_FOR=ip).status_code != 429
    refused = client.get("/no-such-page/", HTTP_X_FORWARDED_FOR=ip)
    _assert_rate_headers(refused, 2)
    assert refused["Content-Type"].startswith("text/")
    # The API has its own budget.
    assert client.get("/api/status", HTTP_X_FORWARDED_FOR=ip).status_code != 429


@pytest.mark.django_db
def test_relay_limit_on_django_served_v1_routes_answers_the_openai_shape(limits_on, make_user, make_key):
    limits_on.GLOBAL_RELAY_RATE_LIMIT = 2
    _, raw = make_key(make_user())
    client = Client()
    for _ in range(2):
        assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    refused = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {raw}")
    _assert_rate_headers(refused, 2)
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    anthropic = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ANTHROPIC_VERSION="2023-06-01")
    assert anthropic.json()["error"]["type"] == "rate_limit_error"


@pytest.mark.django_db
def test_critical_limit_for_sign_in_views(limits_on):
    limits_on.CRITICAL_RATE_LIMIT = 2

    @ratelimit.critical_rate_limit
    def login(request):
        from django.http import HttpResponse

        return HttpResponse("form")

    factory, ip = RequestFactory(), random_ip()
    assert login(factory.get("/accounts/login/", HTTP_X_FORWARDED_FOR=ip)).status_code == 200  # GETs are free
    for _ in range(2):
        assert login(factory.post("/accounts/login/", HTTP_X_FORWARDED_FOR=ip)).status_code == 200
    refused = login(factory.post("/accounts/login/", HTTP_X_FORWARDED_FOR=ip))
    _assert_rate_headers(refused, 2)
    assert ratelimit.check_critical(factory.post("/api/user/login", HTTP_X_FORWARDED_FOR=ip)).status_code == 429


def test_disabled_or_zero_limits_allow_everything(settings):
    settings.RATE_LIMIT_DISABLED = True
    assert ratelimit.hit(Limit("api", 1, 60), "x").allowed and ratelimit.hit(Limit("api", 1, 60), "x").allowed
    settings.RATE_LIMIT_DISABLED = False
    assert all(ratelimit.hit(Limit("api", 0, 60), "x").allowed for _ in range(3))
