"""The API keys pages: create (raw key shown once), edit, disable/enable, delete; bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, KeyStatus, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(make_user) -> User:  # type: ignore[no-untyped-def]
    return make_user()


@pytest.fixture
def client(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_create_shows_the_key_once_and_stores_only_its_digest(client: Client, user: User) -> None:
    future = (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        "/keys/new/",
        {"name": "ci", "quota_usd": "2.5", "expires_at": future, "allowed_models": "gpt-a, gpt-b", "subnet": "10.0.0.0/8"},
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    raw = response.context["raw_key"]
    assert raw.startswith("sk-") and raw in response.content.decode()
    key = ApiKey.objects.get(user=user)
    assert key.digest == keys.digest(raw[3:]) and raw not in (key.display_prefix, key.name)
    assert (key.remain_quota, key.unlimited_quota, key.allowed_models, key.subnet) == (1_250_000, False, "gpt-a,gpt-b", "10.0.0.0/8")
    assert key.expires_at is not None
    listing = client.get("/keys/").content.decode()
    assert "ci" in listing and raw not in listing and key.display_prefix in listing


def test_unlimited_key(client: Client, user: User) -> None:
    client.post("/keys/new/", {"name": "free", "unlimited_quota": "on"})
    key = ApiKey.objects.get(user=user)
    assert key.unlimited_quota and key.expires_at is None


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": ""}, "name", "required"),
        ({"name": "x"}, "quota_usd", "Unlimited quota"),
        ({"name": "x", "quota_usd": "-1"}, "quota_usd", "greater than or equal"),
        ({"name": "x", "quota_usd": "lots"}, "quota_usd", "number"),
        ({"name": "x", "unlimited_quota": "on", "subnet": "10.0.0.300/8"}, "subnet", "not an IP address"),
        ({"name": "x", "unlimited_quota": "on", "expires_at": "2001-01-01T00:00"}, "expires_at", "future"),
        ({"name": "x", "unlimited_quota": "on", "expires_at": "soon"}, "expires_at", "valid date"),
        ({"name": "x" * 65, "unlimited_quota": "on"}, "name", "at most 64"),
    ],
)
def test_bad_input_is_explained_and_creates_nothing(client: Client, fields: dict, field: str, message: str) -> None:
    response = client.post("/keys/new/", fields)
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors[field])
    assert message in errors, errors
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not ApiKey.objects.exists()


def test_edit_changes_the_key(client: Client, user: User, make_key) -> None:  # type: ignore[no-untyped-def]
    key, _ = make_key(user, remain_quota=100)
    page = client.get(f"/keys/{key.pk}/edit/")
    assert page.status_code == 200 and 'value="test key"' in page.content.decode()
    response = client.post(f"/keys/{key.pk}/edit/", {"name": "renamed", "quota_usd": "1", "allowed_models": "m1"})
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.remain_quota, key.allowed_models) == ("renamed", 500_000, "m1")


def test_edit_revives_an_exhausted_key(client: Client, user: User, make_key) -> None:  # type: ignore[no-untyped-def]
    key, _ = make_key(user, remain_quota=0)
    ApiKey.objects.filter(pk=key.pk).update(status=KeyStatus.EXHAUSTED)
    client.post(f"/keys/{key.pk}/edit/", {"name": "k", "quota_usd": "1"})
    key.refresh_from_db()
    assert key.status == KeyStatus.ENABLED


def test_bad_edit_changes_nothing(client: Client, user: User, make_key) -> None:  # type: ignore[no-untyped-def]
    key, _ = make_key(user, remain_quota=100)
    response = client.post(f"/keys/{key.pk}/edit/", {"name": "", "quota_usd": "x"})
    assert response.status_code == 200 and response.context["form"].errors
    key.refresh_from_db()
    assert (key.name, key.remain_quota) == ("test key", 100)


def test_disable_enable_and_delete(client: Client, user: User, make_key) -> None:  # type: ignore[no-untyped-def]
    key, _ = make_key(user)
    assert client.post(f"/keys/{key.pk}/toggle/").status_code == 302
    key.refresh_from_db()
    assert key.status == KeyStatus.DISABLED
    client.post(f"/keys/{key.pk}/toggle/")
    key.refresh_from_db()
    assert key.status == KeyStatus.ENABLED
    assert client.get(f"/keys/{key.pk}/toggle/").status_code == 405
    assert "Delete key" in client.get(f"/keys/{key.pk}/delete/").content.decode()
    assert ApiKey.objects.filter(pk=key.pk).exists()  # GET only asks
    assert client.post(f"/keys/{key.pk}/delete/").status_code == 302
    assert not ApiKey.objects.filter(pk=key.pk).exists()


def test_enabling_an_expired_key_is_refused_with_a_message(client: Client, user: User, make_key) -> None:  # type: ignore[no-untyped-def]
    key, _ = make_key(user, expires_at=timezone.now() - timedelta(days=1))
    ApiKey.objects.filter(pk=key.pk).update(status=KeyStatus.DISABLED)
    response = client.post(f"/keys/{key.pk}/toggle/", follow=True)
    assert "has expired" in response.content.decode()
    key.refresh_from_db()
    assert key.status == KeyStatus.DISABLED


def test_pages_need_a_signed_in_user() -> None:
    for url in ("/keys/", "/keys/new/", "/dashboard/", "/logs/", "/topup/", "/playground/", "/account/"):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
