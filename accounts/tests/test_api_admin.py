"""Management API for admins and root: users (CRUD, search, manage), admin top-up, redemptions,
logs, groups, models, options, channel balances; the original's role rules."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from accounts import keys
from accounts.models import Redemption, RedemptionStatus, Role, User, UserStatus
from accounts.services import access_token_regenerate
from billing.models import ConsumeLog, LogType
from relay.models import Option

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-pass-42"


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=access_token_regenerate(user=user))
    return client


def body(response) -> dict:  # type: ignore[no-untyped-def]
    data = response.json()
    assert set(data) >= {"success", "message", "data"}, data
    return data


@pytest.fixture
def root() -> User:
    return User.objects.get(username="root")


@pytest.fixture
def admin_user() -> User:
    return User.objects.create_user("admin1", PASSWORD, role=Role.ADMIN)


@pytest.fixture
def common() -> User:
    return User.objects.create_user("common1", PASSWORD)


# ------------------------------------------------------------------------------------ users


def test_list_search_and_get(admin_user: User, common: User) -> None:
    client = client_for(admin_user)
    listed = body(client.get("/api/user/?p=0&size=2"))
    assert listed["success"] and len(listed["data"]) == 2 and listed["total"] == 3
    assert [u["username"] for u in body(client.get("/api/user/search?keyword=common"))["data"]] == ["common1"]
    assert body(client.get(f"/api/user/{common.pk}"))["data"]["username"] == "common1"
    assert client.get("/api/user/999999").status_code == 404


def test_admin_cannot_see_or_change_admins_and_root(admin_user: User, root: User) -> None:
    peer = User.objects.create_user("admin2", PASSWORD, role=Role.ADMIN)
    client = client_for(admin_user)
    for target in (peer, root):
        assert client.get(f"/api/user/{target.pk}").status_code == 403
        assert client.put("/api/user/", {"id": target.pk, "display_name": "x"}, format="json").status_code == 403
        assert client.delete(f"/api/user/{target.pk}").status_code == 403
        assert client.post("/api/user/manage", {"username": target.username, "action": "disable"}, format="json").status_code == 403
        assert client.post("/api/topup", {"user_id": target.pk, "quota": 5}, format="json").status_code == 403
    peer.refresh_from_db()
    assert peer.status == UserStatus.ENABLED and peer.display_name == ""


def test_create_user_and_role_limits(admin_user: User, root: User) -> None:
    client = client_for(admin_user)
    created = body(client.post("/api/user/", {"username": "made", "password": PASSWORD, "quota": 5}, format="json"))
    assert created["success"] and created["data"]["quota"] == 5 and created["data"]["role"] == Role.USER
    assert client.post("/api/user/", {"username": "made2", "password": PASSWORD, "role": 10}, format="json").status_code == 403
    assert not User.objects.filter(username="made2").exists()
    assert body(client_for(root).post("/api/user/", {"username": "made2", "password": PASSWORD, "role": 10}, format="json"))["success"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"username": "x", "password": PASSWORD}, "username"),
        ({"username": "newone", "password": "123"}, "password"),
        ({"username": "newone", "password": PASSWORD, "group": "nope"}, "unknown group"),
        ({"username": "newone", "password": PASSWORD, "quota": -5}, "quota"),
        ({"username": "newone", "password": PASSWORD, "role": 7}, "role"),
        ({"username": "common1", "password": PASSWORD}, "taken"),
    ],
)
def test_create_user_bad_input(admin_user: User, common: User, payload: dict, message: str) -> None:
    data = body(client_for(admin_user).post("/api/user/", payload, format="json"))
    assert not data["success"] and message in data["message"], data
    assert not User.objects.filter(username="newone").exists()


def test_update_user(admin_user: User, common: User) -> None:
    client = client_for(admin_user)
    User.objects.filter(pk=common.pk).update(quota=100)
    updated = body(client.put("/api/user/", {"id": common.pk, "display_name": "C", "quota": 250, "password": ""}, format="json"))
    assert updated["success"] and updated["data"]["quota"] == 250 and updated["data"]["display_name"] == "C"
    common.refresh_from_db()
    assert common.check_password(PASSWORD)  # an empty password keeps the old one
    bad = body(client.put("/api/user/", {"id": common.pk, "quota": "lots"}, format="json"))
    assert not bad["success"] and "quota" in bad["message"]
    assert not body(client.put("/api/user/", {"quota": 1}, format="json"))["success"]  # no id
    assert client.put("/api/user/", {"id": common.pk, "role": 10}, format="json").status_code == 403


def test_manage_actions_follow_the_original_rules(admin_user: User, common: User, root: User) -> None:
    admin_client, root_client = client_for(admin_user), client_for(root)

    def manage(client: APIClient, username: str, action: str):  # type: ignore[no-untyped-def]
        return client.post("/api/user/manage", {"username": username, "action": action}, format="json")

    assert body(manage(admin_client, "common1", "disable"))["data"]["status"] == UserStatus.DISABLED
    assert body(manage(admin_client, "common1", "enable"))["data"]["status"] == UserStatus.ENABLED
    assert manage(admin_client, "common1", "promote").status_code == 403  # only root promotes
    assert body(manage(root_client, "common1", "promote"))["data"]["role"] == Role.ADMIN
    assert "already an admin" in body(manage(root_client, "common1", "promote"))["message"]
    assert body(manage(root_client, "common1", "demote"))["data"]["role"] == Role.USER
    assert "already a common user" in body(manage(root_client, "common1", "demote"))["message"]
    assert "not a valid choice" in body(manage(root_client, "common1", "explode"))["message"]
    assert not body(manage(root_client, "root", "disable"))["success"]
    assert manage(root_client, "nobody", "disable").status_code == 404
    assert body(manage(admin_client, "common1", "delete"))["success"]
    assert User.objects.get(pk=common.pk).status == UserStatus.DELETED
    assert client_for(admin_user).get(f"/api/user/{common.pk}").status_code == 404


def test_admin_top_up(admin_user: User, common: User) -> None:
    client = client_for(admin_user)
    data = body(client.post("/api/topup", {"user_id": common.pk, "quota": 1000, "remark": "welcome"}, format="json"))
    assert data["success"] and data["data"]["quota"] == 1000
    assert ConsumeLog.objects.filter(user=common, type=LogType.TOPUP, quota=1000, content__contains="welcome").exists()
    assert not body(client.post("/api/topup", {"user_id": common.pk, "quota": -5000}, format="json"))["success"]
    assert not body(client.post("/api/topup", {"user_id": common.pk, "quota": 0}, format="json"))["success"]
    common.refresh_from_db()
    assert common.quota == 1000


# ------------------------------------------------------------------------------------ redemptions


def test_redemption_crud(admin_user: User) -> None:
    client = client_for(admin_user)
    codes = body(client.post("/api/redemption/", {"name": "promo", "quota": 500, "count": 3}, format="json"))["data"]
    assert len(codes) == 3 and all(len(c) == 32 for c in codes)
    rows = Redemption.objects.order_by("id")
    assert {r.key_digest for r in rows} == {keys.digest(c) for c in codes}
    listed = body(client.get("/api/redemption/"))
    assert listed["total"] == 3 and all(c not in str(listed) for c in codes)
    first = rows[0]
    assert body(client.get(f"/api/redemption/{first.pk}"))["data"]["name"] == "promo"
    assert body(client.get("/api/redemption/search?keyword=pro"))["total"] == 3
    updated = body(client.put("/api/redemption/", {"id": first.pk, "name": "renamed", "quota": 9}, format="json"))
    assert updated["data"]["name"] == "renamed" and updated["data"]["quota"] == 9
    assert body(client.put("/api/redemption/?status_only=true", {"id": first.pk, "status": 2, "name": "x"}, format="json"))["data"]["status"] == 2
    assert Redemption.objects.get(pk=first.pk).name == "renamed"
    Redemption.objects.filter(pk=first.pk).update(status=RedemptionStatus.USED)
    assert not body(client.put("/api/redemption/", {"id": first.pk, "status": 1}, format="json"))["success"]
    assert body(client.delete(f"/api/redemption/{first.pk}"))["success"]
    assert client.delete(f"/api/redemption/{first.pk}").status_code == 404


@pytest.mark.parametrize(
    "payload", [{"name": "x", "quota": 5, "count": 101}, {"name": "", "quota": 5}, {"name": "x", "quota": 0}, {"name": "x", "quota": "a"}]
)
def test_redemption_bad_input(admin_user: User, payload: dict) -> None:
    data = body(client_for(admin_user).post("/api/redemption/", payload, format="json"))
    assert not data["success"] and data["message"]
    assert not Redemption.objects.exists()


# ------------------------------------------------------------------------------------ logs


def test_admin_logs(admin_user: User, common: User) -> None:
    old = ConsumeLog.objects.create(user=common, username="common1", model_name="m", quota=5, request_id="rid-old")
    ConsumeLog.objects.filter(pk=old.pk).update(created_at="2001-01-01T00:00:00Z")
    ConsumeLog.objects.create(user=common, username="common1", model_name="m", quota=7, request_id="rid-new")
    client = client_for(admin_user)
    listed = body(client.get("/api/log/?username=common1"))
    assert listed["total"] == 2 and "channel" in listed["data"][0]
    assert body(client.get("/api/log/stat?username=common1"))["data"] == {"quota": 12}
    assert [r["request_id"] for r in body(client.get("/api/log/search?keyword=rid-new"))["data"]] == ["rid-new"]
    assert not body(client.delete("/api/log/"))["success"]
    assert not body(client.delete("/api/log/?target_timestamp=abc"))["success"]
    assert ConsumeLog.objects.count() == 2
    deleted = body(client.delete(f"/api/log/?target_timestamp={int(time.time()) - 86400}"))
    assert deleted["data"] == 1 and list(ConsumeLog.objects.values_list("request_id", flat=True)) == ["rid-new"]


# ------------------------------------------------------------------------------------ groups, models, options


def test_groups_and_models(admin_user: User, make_channel, unique_model: str) -> None:  # type: ignore[no-untyped-def]
    make_channel(unique_model)
    client = client_for(admin_user)
    assert "default" in body(client.get("/api/group/"))["data"]
    assert unique_model in body(client.get("/api/models"))["data"]["1"]


def test_options_are_root_only_validated_and_secrets_hidden(root: User, admin_user: User) -> None:
    Option.objects.create(key="GitHubClientSecret", value="gh-very-secret")
    assert client_for(admin_user).get("/api/option/").status_code == 403
    client = client_for(root)
    data = body(client.get("/api/option/"))["data"]
    keys_listed = {o["key"] for o in data}
    assert "QuotaForNewUser" in keys_listed and "GitHubClientSecret" not in keys_listed
    assert "gh-very-secret" not in str(data)
    assert body(client.put("/api/option/", {"key": "QuotaForNewUser", "value": " 42 "}, format="json"))["success"]
    assert Option.objects.get(key="QuotaForNewUser").value == "42"
    for payload, message in (
        ({"key": "QuotaForNewUser", "value": "-1"}, "negative"),
        ({"key": "RegisterEnabled", "value": "maybe"}, "true or false"),
        ({"key": "EmailDomainWhitelist", "value": "not a domain"}, "domain"),
        ({"key": "NoSuchOption", "value": "1"}, "unknown option"),
        ({"value": "1"}, "key"),
    ):
        failure = body(client.put("/api/option/", payload, format="json"))
        assert not failure["success"] and message in failure["message"], failure
    assert Option.objects.get(key="QuotaForNewUser").value == "42"


def test_channel_balance_answers_cleanly(admin_user: User, make_channel, unique_model: str) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(unique_model, type=50)
    client = client_for(admin_user)
    data = body(client.get(f"/api/channel/update_balance/{channel.pk}"))
    assert not data["success"] and "no balance endpoint" in data["message"]
    assert client.get("/api/channel/update_balance/999999").status_code == 404
    assert "refreshed 0" in body(client.get("/api/channel/update_balance"))["message"]
