"""`GET /api/cost/request/<id>`: only the key that made the request, its owner or an admin see it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey, KeyStatus, Role, User
from accounts.services import access_token_regenerate, api_key_create
from billing.models import ChargeStatus, RequestCharge

pytestmark = pytest.mark.django_db

REQUEST_ID = "20250101000000abcdef0123456789"


@dataclass
class Persona:
    user: User
    key: ApiKey
    raw_key: str
    access_token: str


def persona(username: str, role: int = Role.USER) -> Persona:
    user = User.objects.create_user(username, "pw-12345678", role=role)
    key, raw = api_key_create(user=user, name=f"{username} key", unlimited_quota=True)
    return Persona(user, key, raw, access_token_regenerate(user=user))


@pytest.fixture
def alice() -> Persona:
    return persona("alice")


@pytest.fixture
def charge(alice: Persona) -> RequestCharge:
    return RequestCharge.objects.create(
        request_id=REQUEST_ID,
        user=alice.user,
        api_key=alice.key,
        held_quota=9000,
        quota=1250,
        status=ChargeStatus.SETTLED,
    )


def get_cost(authorization: str | None = None, request_id: str = REQUEST_ID, client: APIClient | None = None):  # type: ignore[no-untyped-def]
    client = client or APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.get(f"/api/cost/request/{request_id}")


def assert_is_charge(response, charge: RequestCharge) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == charge.pk and body["request_id"] == REQUEST_ID
    assert body["user_id"] == charge.user_id and body["quota"] == 1250
    assert body["cost_usd"] == pytest.approx(0.0025)
    assert isinstance(body["created_time"], int)
    assert "success" not in body  # the original's bare object, not the envelope


def test_owner_key_sees_its_charge(alice: Persona, charge: RequestCharge) -> None:
    assert_is_charge(get_cost(f"Bearer {alice.raw_key}"), charge)
    # The original's key form without the prefix, and the Anthropic-style header, work too.
    assert_is_charge(get_cost(f"Bearer {alice.raw_key[3:]}"), charge)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=alice.raw_key)
    assert_is_charge(client.get(f"/api/cost/request/{REQUEST_ID}"), charge)


def test_exhausted_key_may_still_read_its_costs(alice: Persona, charge: RequestCharge) -> None:
    alice.key.status = KeyStatus.EXHAUSTED
    alice.key.save()
    assert_is_charge(get_cost(f"Bearer {alice.raw_key}"), charge)


def test_owner_user_by_token_and_session(alice: Persona, charge: RequestCharge) -> None:
    assert_is_charge(get_cost(alice.access_token), charge)
    client = APIClient()
    assert client.login(username="alice", password="pw-12345678")
    assert_is_charge(get_cost(client=client), charge)


def test_admin_sees_any_charge(charge: RequestCharge) -> None:
    admin = persona("ada", role=Role.ADMIN)
    assert_is_charge(get_cost(admin.access_token), charge)


def test_others_get_404(alice: Persona, charge: RequestCharge) -> None:
    bob = persona("bob")
    other_key, other_raw = api_key_create(user=alice.user, name="alice's other key", unlimited_quota=True)
    for authorization in (bob.access_token, f"Bearer {bob.raw_key}", f"Bearer {other_raw}"):
        response = get_cost(authorization)
        assert response.status_code == 404, authorization
        assert response.json()["success"] is False
    # The same answer as for an id that does not exist at all.
    unknown = get_cost(bob.access_token, request_id="nope")
    assert unknown.status_code == 404 and unknown.json() == get_cost(bob.access_token).json()


def test_no_or_wrong_credentials_get_401(charge: RequestCharge) -> None:
    assert get_cost().status_code == 401
    assert get_cost("Bearer sk-" + "x" * 48).status_code == 401
    assert get_cost("0123456789abcdef0123456789abcdef").status_code == 401


def test_disabled_key_is_refused(alice: Persona, charge: RequestCharge) -> None:
    alice.key.status = KeyStatus.DISABLED
    alice.key.save()
    response = get_cost(f"Bearer {alice.raw_key}")
    assert response.status_code == 401 and response.json()["success"] is False


def test_held_charge_shows_the_hold(alice: Persona) -> None:
    RequestCharge.objects.create(request_id=REQUEST_ID, user=alice.user, api_key=alice.key, held_quota=5000)
    body = get_cost(alice.access_token).json()
    assert body["quota"] == 5000 and body["status"] == "held"
