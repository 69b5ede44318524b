"""Tenant isolation: user B walks every page and `/api` route at user A's objects (keys, logs,
costs, redemptions) and is refused every time (404 where the object is A's own, 403 where the
route is for admins), while A's rows stay as they were. Admin-only and root-only routes refuse
lower roles."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiKey, KeyStatus, Role, User
from accounts.redemptions import redemption_redeem, redemptions_create
from accounts.services import access_token_regenerate
from billing.models import ConsumeLog, RequestCharge

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user, make_key, make_channel, unique_model):  # type: ignore[no-untyped-def]
    alice, bob = make_user(), make_user()
    channel = make_channel(unique_model)
    key, _ = make_key(alice, name="alice-secret-key")
    ConsumeLog.objects.create(
        user=alice, username=alice.username, api_key=key, token_name=key.name, model_name="alice-model",
        channel=channel, quota=42, request_id="req-alice-1",
    )
    RequestCharge.objects.create(request_id="req-alice-1", user=alice, api_key=key, quota=42, status=2)
    [(redemption, code)] = redemptions_create(name="alice-gift", quota=10, count=1, created_by=None)
    redemption_redeem(user=alice, code=code)
    return {"alice": alice, "bob": bob, "key": key, "redemption": redemption, "channel": channel}


def api_as(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=access_token_regenerate(user=user))
    return client


def test_bob_cannot_reach_alices_objects_through_pages(world: dict) -> None:
    bob = Client()
    bob.force_login(world["bob"])
    key_id = world["key"].pk
    for method, url, data in [
        ("get", f"/keys/{key_id}/edit/", None),
        ("post", f"/keys/{key_id}/edit/", {"name": "stolen", "unlimited_quota": "on"}),
        ("post", f"/keys/{key_id}/toggle/", None),
        ("get", f"/keys/{key_id}/delete/", None),
        ("post", f"/keys/{key_id}/delete/", None),
        ("get", f"/logs/?key={key_id}", None),
        ("get", f"/logs/export.csv?key={key_id}", None),
    ]:
        response = getattr(bob, method)(url, data) if data else getattr(bob, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
    for url in ("/keys/", "/logs/", "/dashboard/", "/topup/", "/playground/", "/account/"):
        page = bob.get(url).content.decode()
        for secret in ("alice-secret-key", "alice-model", "req-alice-1", "alice-gift", world["alice"].username):
            assert secret not in page, (url, secret)
    csv_text = b"".join(bob.get("/logs/export.csv").streaming_content).decode()
    assert "alice" not in csv_text
    for url in ("/admin/", "/admin/accounts/apikey/", f"/admin/accounts/apikey/{key_id}/change/", "/admin/accounts/redemption/", "/admin/billing/consumelog/"):
        response = bob.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
    key = ApiKey.objects.get(pk=key_id)
    assert (key.name, key.status, key.unlimited_quota) == ("alice-secret-key", KeyStatus.ENABLED, True)


def test_bob_cannot_reach_alices_objects_through_the_api(world: dict) -> None:
    client = api_as(world["bob"])
    alice, key, redemption, channel = world["alice"], world["key"], world["redemption"], world["channel"]
    refusals = [
        ("get", f"/api/token/{key.pk}", None, 404),
        ("delete", f"/api/token/{key.pk}", None, 404),
        ("put", "/api/token/", {"id": key.pk, "name": "stolen"}, 404),
        ("put", "/api/token/?status_only=true", {"id": key.pk, "status": 2}, 404),
        ("get", "/api/cost/request/req-alice-1", None, 404),
        ("get", f"/api/user/{alice.pk}", None, 403),
        ("put", "/api/user/", {"id": alice.pk, "quota": 0}, 403),
        ("delete", f"/api/user/{alice.pk}", None, 403),
        ("post", "/api/user/manage", {"username": alice.username, "action": "disable"}, 403),
        ("post", "/api/topup", {"user_id": alice.pk, "quota": -1}, 403),
        ("get", "/api/user/", None, 403),
        ("get", "/api/user/search?keyword=a", None, 403),
        ("get", "/api/redemption/", None, 403),
        ("get", f"/api/redemption/{redemption.pk}", None, 403),
        ("get", "/api/redemption/search?keyword=alice", None, 403),
        ("put", "/api/redemption/", {"id": redemption.pk, "status": 1}, 403),
        ("delete", f"/api/redemption/{redemption.pk}", None, 403),
        ("post", "/api/redemption/", {"name": "x", "quota": 1, "count": 1}, 403),
        ("get", "/api/log/", None, 403),
        ("get", "/api/log/stat", None, 403),
        ("get", "/api/log/search?keyword=req-alice-1", None, 403),
        ("delete", "/api/log/?target_timestamp=9999999999", None, 403),
        ("get", "/api/channel/", None, 403),
        ("get", f"/api/channel/{channel.pk}", None, 403),
        ("get", f"/api/channel/test/{channel.pk}", None, 403),
        ("get", f"/api/channel/update_balance/{channel.pk}", None, 403),
        ("get", "/api/group/", None, 403),
        ("get", "/api/models", None, 403),
        ("get", "/api/option/", None, 403),
        ("put", "/api/option/", {"key": "QuotaForNewUser", "value": "1"}, 403),
    ]
    for method, url, data, expected in refusals:
        response = getattr(client, method)(url, data, format="json") if data else getattr(client, method)(url)
        assert response.status_code == expected, (method, url, response.status_code, response.content[:200])
        assert response.json()["success"] is False
    for url in ("/api/log/self", f"/api/log/self?token_name={key.name}", "/api/log/self/search?keyword=req-alice-1", "/api/token/", "/api/user/dashboard"):
        text = client.get(url).content.decode()
        assert "alice" not in text and "req-alice-1" not in text, url
    assert client.get("/api/log/self/stat").json()["data"] == {"quota": 0}
    alice.refresh_from_db()
    key.refresh_from_db()
    assert alice.status == 1 and alice.quota == 10_000_010 and key.name == "alice-secret-key"
    assert ConsumeLog.objects.filter(request_id="req-alice-1").exists()


ADMIN_ROUTES = ["/api/user/", "/api/redemption/", "/api/log/", "/api/log/stat", "/api/group/", "/api/models", "/api/channel/"]
ROOT_ROUTES = ["/api/option/"]


@pytest.mark.parametrize("role", [Role.GUEST, Role.USER])
def test_admin_routes_refuse_lower_roles(role: int, make_user) -> None:  # type: ignore[no-untyped-def]
    client = api_as(make_user(role=role))
    for url in ADMIN_ROUTES + ROOT_ROUTES:
        assert client.get(url).status_code == 403, url
    for url in ADMIN_ROUTES + ROOT_ROUTES:
        assert APIClient().get(url).status_code == 401, url


def test_root_routes_refuse_admins_and_admins_reach_theirs(make_user) -> None:  # type: ignore[no-untyped-def]
    client = api_as(make_user(role=Role.ADMIN))
    for url in ROOT_ROUTES:
        assert client.get(url).status_code == 403, url
    for url in ADMIN_ROUTES:
        assert client.get(url).status_code == 200, url
    assert api_as(User.objects.get(username="root")).get("/api/option/").status_code == 200


def test_guests_are_refused_self_routes(make_user) -> None:  # type: ignore[no-untyped-def]
    client = api_as(make_user(role=Role.GUEST))
    for url in ("/api/user/self", "/api/token/", "/api/log/self", "/api/user/aff", "/api/user/dashboard"):
        assert client.get(url).status_code == 403, url
