"""Management API: authentication, the envelope, and relay key CRUD with tenant isolation."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from accounts import keys
from accounts.models import ApiKey, KeyStatus, Role, User, UserStatus
from accounts.services import access_token_regenerate, api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", "pw-12345678", quota=1000)


@pytest.fixture
def bob() -> User:
    return User.objects.create_user("bob", "pw-12345678")


def token_client(user: User, *, bearer: bool = False) -> APIClient:
    client = APIClient()
    token = access_token_regenerate(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}" if bearer else token)
    return client


@pytest.fixture
def alice_client(alice: User) -> APIClient:
    return token_client(alice)


def create_key(client: APIClient, **fields: object) -> dict:
    body = {"name": "laptop", "remain_quota": 5000, "expired_time": -1, **fields}
    response = client.post("/api/token/", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["success"] is True, response.json()
    return response.json()["data"]


# --- status and authentication -------------------------------------------------------------


def test_status_is_public_and_enveloped() -> None:
    response = APIClient().get("/api/status")
    body = response.json()
    assert response.status_code == 200
    assert body["success"] is True and body["message"] == ""
    assert body["data"]["quota_per_unit"] == 500000
    assert body["data"]["system_name"]
    assert isinstance(body["data"]["start_time"], int)
    assert response["X-Oneapi-Request-Id"]


@pytest.mark.parametrize("bearer", [False, True])
def test_self_by_access_token(alice: User, bearer: bool) -> None:
    response = token_client(alice, bearer=bearer).get("/api/user/self")
    data = response.json()["data"]
    assert response.status_code == 200
    assert data["username"] == "alice" and data["group"] == "default"
    assert data["quota"] == 1000 and data["role"] == Role.USER
    assert "access_token_digest" not in data and "password" not in data


def test_self_by_session(alice: User) -> None:
    client = APIClient()
    assert client.login(username="alice", password="pw-12345678")
    assert client.get("/api/user/self").json()["data"]["id"] == alice.pk


def test_session_writes_need_csrf(alice: User) -> None:
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="alice", password="pw-12345678")
    response = client.post("/api/token/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["success"] is False and "CSRF" in response.json()["message"]
    assert not ApiKey.objects.exists()


def test_unauthenticated_is_401_envelope() -> None:
    response = APIClient().get("/api/user/self")
    assert response.status_code == 401
    assert response.json() == {"success": False, "message": response.json()["message"], "data": None}
    assert response["WWW-Authenticate"]


def test_wrong_access_token_is_401(alice: User) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="0123456789abcdef0123456789abcdef")
    response = client.get("/api/user/self")
    assert response.status_code == 401 and response.json()["success"] is False


def test_relay_key_is_not_an_access_token(alice: User) -> None:
    _, raw = api_key_create(user=alice, name="k", unlimited_quota=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/user/self").status_code == 401


def test_disabled_user_refused(alice: User) -> None:
    client = token_client(alice)
    alice.status = UserStatus.DISABLED
    alice.save()
    response = client.get("/api/user/self")
    assert response.status_code == 403 and response.json()["success"] is False


def test_guest_refused(alice: User) -> None:
    alice.role = Role.GUEST
    alice.save()
    assert token_client(alice).get("/api/token/").status_code == 403


def test_regenerate_access_token(alice: User) -> None:
    old = token_client(alice)
    response = old.get("/api/user/token")
    new_token = response.json()["data"]
    assert response.json()["success"] is True and len(new_token) == 32
    alice.refresh_from_db()
    assert alice.access_token_digest == keys.digest(new_token)
    assert old.get("/api/user/self").status_code == 401
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=new_token)
    assert fresh.get("/api/user/self").status_code == 200


def test_unknown_api_route_is_json_404(alice_client: APIClient) -> None:
    for method in ("get", "post", "delete"):
        response = getattr(alice_client, method)("/api/no/such/thing")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["success"] is False


# --- relay keys ----------------------------------------------------------------------------


def test_create_returns_key_once_and_stores_only_digest(alice: User, alice_client: APIClient) -> None:
    data = create_key(alice_client, models="gpt-4o, gpt-4o-mini", subnet="10.0.0.0/8")
    raw = data["key"]
    assert raw.startswith("sk-") and len(raw) == 51
    row = ApiKey.objects.get(pk=data["id"])
    assert row.user == alice
    assert row.digest == keys.digest(keys.strip_key_prefix(raw))
    assert raw[3:] not in {row.digest, row.display_prefix, row.name}
    assert data["key_prefix"] == row.display_prefix and raw.startswith(row.display_prefix)
    assert data["models"] == "gpt-4o,gpt-4o-mini" and data["subnet"] == "10.0.0.0/8"
    assert data["expired_time"] == -1 and data["remain_quota"] == 5000 and data["status"] == KeyStatus.ENABLED

    listed = alice_client.get("/api/token/").json()
    detail = alice_client.get(f"/api/token/{row.pk}").json()
    for body in (listed, detail):
        text = str(body)
        assert raw[3:] not in text and row.digest not in text and "'key'" not in text
    assert listed["data"][0]["id"] == row.pk and listed["total"] == 1


def test_expiry_round_trip(alice_client: APIClient) -> None:
    later = int(time.time()) + 3600
    data = create_key(alice_client, expired_time=later)
    assert data["expired_time"] == later
    assert ApiKey.objects.get(pk=data["id"]).expires_at is not None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"subnet": "10.0.0.0/8,not-an-ip"}, "subnet"),
        ({"name": ""}, "name"),
        ({"name": "x" * 100}, "name"),
        ({"expired_time": 1000}, "expired_time"),
        ({"remain_quota": -5}, "remain_quota"),
        ({"remain_quota": "lots"}, "remain_quota"),
    ],
)
def test_create_validation_errors_change_nothing(alice_client: APIClient, fields: dict, field: str) -> None:
    body = {"name": "k", "remain_quota": 1, "expired_time": -1, **fields}
    response = alice_client.post("/api/token/", body, format="json")
    assert response.status_code == 200
    assert response.json()["success"] is False
    assert field in response.json()["message"]
    assert not ApiKey.objects.exists()


def test_malformed_json_is_a_failure_not_a_crash(alice_client: APIClient) -> None:
    response = alice_client.post("/api/token/", "{not json", content_type="application/json")
    assert response.status_code == 200 and response.json()["success"] is False
    assert not ApiKey.objects.exists()


def test_another_users_keys_are_invisible(alice_client: APIClient, bob: User) -> None:
    bob_key, _ = api_key_create(user=bob, name="bob's", remain_quota=7)
    assert alice_client.get(f"/api/token/{bob_key.pk}").status_code == 404
    assert alice_client.delete(f"/api/token/{bob_key.pk}").status_code == 404
    response = alice_client.put("/api/token/", {"id": bob_key.pk, "name": "mine now"}, format="json")
    assert response.status_code == 404 and response.json()["success"] is False
    assert alice_client.get("/api/token/").json()["data"] == []
    assert alice_client.get("/api/token/search", {"keyword": "bob"}).json()["data"] == []
    bob_key.refresh_from_db()
    assert bob_key.name == "bob's"


def test_list_pages_and_search(alice_client: APIClient) -> None:
    for name in ("alpha", "beta", "gamma"):
        create_key(alice_client, name=name)
    page = alice_client.get("/api/token/", {"p": 1, "size": 2}).json()
    assert [t["name"] for t in page["data"]] == ["alpha"] and page["total"] == 3
    found = alice_client.get("/api/token/search", {"keyword": "amm"}).json()["data"]
    assert [t["name"] for t in found] == ["gamma"]


def test_update_changes_only_sent_fields(alice_client: APIClient) -> None:
    data = create_key(alice_client, models="a")
    response = alice_client.put(
        "/api/token/", {"id": data["id"], "name": "renamed", "subnet": "192.168.1.0/24"}, format="json"
    )
    body = response.json()
    assert body["success"] is True
    assert body["data"]["name"] == "renamed" and body["data"]["subnet"] == "192.168.1.0/24"
    assert body["data"]["remain_quota"] == 5000 and body["data"]["models"] == "a"
    assert "key" not in body["data"]


def test_update_validation_error_changes_nothing(alice_client: APIClient) -> None:
    data = create_key(alice_client)
    response = alice_client.put("/api/token/", {"id": data["id"], "name": "new", "subnet": "nope"}, format="json")
    assert response.json()["success"] is False and "subnet" in response.json()["message"]
    assert ApiKey.objects.get(pk=data["id"]).name == "laptop"


def test_status_only_update(alice_client: APIClient) -> None:
    data = create_key(alice_client)
    response = alice_client.put(
        "/api/token/?status_only=true", {"id": data["id"], "status": 2, "name": "ignored"}, format="json"
    )
    assert response.json()["data"]["status"] == KeyStatus.DISABLED
    row = ApiKey.objects.get(pk=data["id"])
    assert row.status == KeyStatus.DISABLED and row.name == "laptop"


def test_enabling_an_exhausted_key_is_refused(alice: User, alice_client: APIClient) -> None:
    key, _ = api_key_create(user=alice, name="spent", remain_quota=0)
    key.status = KeyStatus.EXHAUSTED
    key.save()
    response = alice_client.put("/api/token/?status_only=true", {"id": key.pk, "status": 1}, format="json")
    assert response.json()["success"] is False and "quota" in response.json()["message"]
    key.refresh_from_db()
    assert key.status == KeyStatus.EXHAUSTED
    response = alice_client.put("/api/token/", {"id": key.pk, "remain_quota": 100, "status": 1}, format="json")
    assert response.json()["success"] is True and response.json()["data"]["status"] == KeyStatus.ENABLED


def test_delete(alice_client: APIClient) -> None:
    data = create_key(alice_client)
    response = alice_client.delete(f"/api/token/{data['id']}")
    assert response.json() == {"success": True, "message": "", "data": None}
    assert not ApiKey.objects.exists()
    assert alice_client.get(f"/api/token/{data['id']}").status_code == 404


@pytest.mark.parametrize("body", [[1, 2], {"name": "no id"}, {"id": "abc"}])
def test_update_needs_an_integer_id_in_an_object(alice_client: APIClient, body: object) -> None:
    response = alice_client.put("/api/token/", body, format="json")
    assert response.status_code == 200 and response.json()["success"] is False


def test_unexpected_error_is_a_json_500_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from accounts import api

    def broken() -> dict:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api, "system_status", broken)
    response = APIClient().get("/api/status")
    assert response.status_code == 500
    body = response.json()
    assert body["success"] is False and "request id" in body["message"]
    assert "secret internals" not in response.content.decode() and "Traceback" not in response.content.decode()
