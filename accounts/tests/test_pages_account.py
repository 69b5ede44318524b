"""Account, top-up (redemption codes, invite link) and playground pages."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts import keys
from accounts.models import ApiKey, Redemption, RedemptionStatus, User, UserStatus
from accounts.redemptions import redemptions_create
from billing.models import ConsumeLog, LogType
from relay.models import Option

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(make_user) -> User:  # type: ignore[no-untyped-def]
    return make_user(quota=1000)


@pytest.fixture
def client(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_display_name(client: Client, user: User) -> None:
    assert client.post("/account/", {"display_name": "Ada"}).status_code == 302
    user.refresh_from_db()
    assert user.display_name == "Ada"
    response = client.post("/account/", {"display_name": "x" * 31})
    assert response.status_code == 200 and "at most 30" in response.content.decode()
    user.refresh_from_db()
    assert user.display_name == "Ada"


def test_access_token_is_shown_once_and_works(client: Client, user: User) -> None:
    assert client.get("/account/token/").status_code == 405
    response = client.post("/account/token/")
    token = response.context["token"]
    assert "no-store" in response["Cache-Control"] and token in response.content.decode()
    user.refresh_from_db()
    assert user.access_token_digest == keys.digest(token)
    assert Client().get("/api/user/self", HTTP_AUTHORIZATION=token).json()["data"]["id"] == user.pk
    assert token not in client.get("/account/").content.decode()


def test_delete_account_needs_username_and_password(client: Client, user: User, make_key) -> None:  # type: ignore[no-untyped-def]
    make_key(user)
    response = client.post("/account/delete/", {"confirm_username": "someone", "password": "wrong"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "not your username" in page and "password is not correct" in page
    assert User.objects.get(pk=user.pk).status == UserStatus.ENABLED
    username = user.username
    response = client.post("/account/delete/", {"confirm_username": username, "password": "pw-12345678"})
    assert response.status_code == 302
    gone = User.objects.get(pk=user.pk)
    assert gone.status == UserStatus.DELETED and gone.username != username and not gone.has_usable_password()
    assert not ApiKey.objects.filter(user=gone).exists()
    assert client.get("/dashboard/").status_code == 302  # signed out


def test_redeem_a_code_once(client: Client, user: User) -> None:
    [(_, code)] = redemptions_create(name="gift", quota=500_000, count=1, created_by=None)
    response = client.post("/topup/", {"code": code}, follow=True)
    assert "Redeemed $1.00" in response.content.decode()
    user.refresh_from_db()
    assert user.quota == 501_000
    row = Redemption.objects.get()
    assert row.status == RedemptionStatus.USED and row.redeemed_by_id == user.pk and row.redeemed_at
    assert ConsumeLog.objects.filter(user=user, type=LogType.TOPUP, quota=500_000).count() == 1
    again = client.post("/topup/", {"code": code})
    assert "already been used" in again.content.decode()
    user.refresh_from_db()
    assert user.quota == 501_000


@pytest.mark.parametrize(("code", "message"), [("", "required"), ("abc", "32 characters"), ("0" * 32, "no such")])
def test_bad_codes_are_explained(client: Client, user: User, code: str, message: str) -> None:
    response = client.post("/topup/", {"code": code})
    assert response.status_code == 200 and message in response.content.decode()
    user.refresh_from_db()
    assert user.quota == 1000


def test_disabled_code_is_refused(client: Client, user: User) -> None:
    [(row, code)] = redemptions_create(name="gift", quota=10, count=1, created_by=None)
    Redemption.objects.filter(pk=row.pk).update(status=RedemptionStatus.DISABLED)
    assert "disabled" in client.post("/topup/", {"code": code}).content.decode()


def test_topup_page_shows_the_invite_link_and_rewards(client: Client, user: User) -> None:
    Option.objects.create(key="QuotaForInviter", value="500000")
    page = client.get("/topup/").content.decode()
    user.refresh_from_db()
    assert f"/accounts/signup/?aff={user.aff_code}" in page and "$1.00" in page


def test_playground_key_is_short_lived_and_json(client: Client, user: User) -> None:
    assert client.get("/playground/key/").status_code == 405
    data = client.post("/playground/key/").json()
    key = ApiKey.objects.get(user=user)
    assert data["key"].startswith("sk-") and key.digest == keys.digest(data["key"][3:])
    assert key.name == "playground" and key.expires_at is not None


def test_playground_lists_the_groups_models(client: Client, make_channel, unique_model: str) -> None:  # type: ignore[no-untyped-def]
    make_channel(unique_model)
    assert unique_model in client.get("/playground/").content.decode()
