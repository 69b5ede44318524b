"""Management API for one's own account: register, login, logout, e-mail codes, password reset,
self (PUT/DELETE), aff, topup, available models, dashboard, self logs."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import User, UserStatus
from accounts.redemptions import redemptions_create
from accounts.services import access_token_regenerate
from billing.models import ConsumeLog, LogType
from relay.models import Option

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-pass-42"


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    cache.clear()


def set_option(key: str, value: str) -> None:
    Option.objects.update_or_create(key=key, defaults={"value": value})


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=access_token_regenerate(user=user))
    return client


def envelope(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) >= {"success", "message", "data"}, body
    return body


def test_notice_about_and_status_follow_the_options() -> None:
    set_option("Notice", "Maintenance at noon")
    set_option("SystemName", "Acme AI")
    assert envelope(APIClient().get("/api/notice"))["data"] == "Maintenance at noon"
    assert envelope(APIClient().get("/api/about"))["data"] == ""
    status = envelope(APIClient().get("/api/status"))["data"]
    assert status["system_name"] == "Acme AI" and status["email_verification"] is True and status["register_enabled"] is True


def test_register_with_an_emailed_code_then_login_logout() -> None:
    set_option("QuotaForNewUser", "77")
    client = APIClient()
    assert envelope(client.get("/api/verification?email=new@example.com"))["success"]
    code = re.search(r"code is ([A-Z0-9]{6})", mail.outbox[-1].body).group(1)
    body = {"username": "apiuser", "password": PASSWORD, "email": "new@example.com", "verification_code": "WRONG1"}
    refused = envelope(client.post("/api/user/register", body, format="json"))
    assert not refused["success"] and "verification code" in refused["message"]
    assert not User.objects.filter(username="apiuser").exists()
    created = envelope(client.post("/api/user/register", {**body, "verification_code": code}, format="json"))
    assert created["success"] and created["data"]["quota"] == 77
    logged = envelope(client.post("/api/user/login", {"username": "apiuser", "password": PASSWORD}, format="json"))
    assert logged["success"] and logged["data"]["username"] == "apiuser" and "quota" not in logged["data"]
    assert envelope(client.get("/api/user/self"))["data"]["email"] == "new@example.com"
    assert envelope(client.get("/api/user/logout"))["success"]
    assert client.get("/api/user/self").status_code == 401


def test_register_without_verification_and_with_an_invite() -> None:
    set_option("EmailVerificationEnabled", "false")
    set_option("QuotaForInviter", "5")
    host = User.objects.create_user("host", PASSWORD, aff_code="H0ST")
    body = {"username": "guest", "password": PASSWORD, "aff_code": "H0ST"}
    assert envelope(APIClient().post("/api/user/register", body, format="json"))["success"]
    host.refresh_from_db()
    assert host.quota == 5 and User.objects.get(username="guest").inviter_id == host.pk


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"username": "ab", "password": PASSWORD}, "username"),
        ({"username": "bad name!", "password": PASSWORD}, "letters, digits"),
        ({"username": "fine", "password": "short"}, "password"),
        ({"username": "fine", "password": "password123"}, "too common"),
        ({"username": "taken", "password": PASSWORD}, "taken"),
        ({"username": "fine", "password": PASSWORD, "aff_code": "nope"}, "aff_code"),
        ({"username": "fine", "password": PASSWORD, "email": "not-an-email"}, "email"),
        ({"username": ["x"], "password": PASSWORD}, "username"),
    ],
)
def test_register_bad_input(body: dict, message: str) -> None:
    set_option("EmailVerificationEnabled", "false")
    User.objects.create_user("taken", PASSWORD)
    response = APIClient().post("/api/user/register", body, format="json")
    data = envelope(response)
    assert response.status_code == 200 and not data["success"] and message in data["message"], data
    assert User.objects.count() == 2  # root and "taken"


def test_register_closed_and_domain_rules() -> None:
    set_option("EmailVerificationEnabled", "false")
    set_option("EmailDomainRestrictionEnabled", "true")
    set_option("EmailDomainWhitelist", "corp.example")
    body = {"username": "outsider", "password": PASSWORD, "email": "x@elsewhere.example"}
    assert "domain" in envelope(APIClient().post("/api/user/register", body, format="json"))["message"]
    assert "domain" in envelope(APIClient().get("/api/verification?email=x@elsewhere.example"))["message"]
    set_option("RegisterEnabled", "false")
    assert "closed" in envelope(APIClient().post("/api/user/register", {**body, "email": ""}, format="json"))["message"]
    assert not User.objects.filter(username="outsider").exists()


@pytest.mark.parametrize(
    "body",
    [{"username": "u1", "password": "wrong-password"}, {"username": "nobody", "password": PASSWORD}, {"username": "u1"}, ["x"]],
)
def test_login_failures(body: object) -> None:
    User.objects.create_user("u1", PASSWORD)
    data = envelope(APIClient().post("/api/user/login", body, format="json"))
    assert not data["success"] and data["message"]


def test_login_refuses_unverified_and_turned_off() -> None:
    from allauth.account.models import EmailAddress

    user = User.objects.create_user("u1", PASSWORD, email="u1@example.com")
    EmailAddress.objects.create(user=user, email="u1@example.com", verified=False, primary=True)
    assert "verify" in envelope(APIClient().post("/api/user/login", {"username": "u1", "password": PASSWORD}, format="json"))["message"]
    EmailAddress.objects.filter(user=user).update(verified=True)
    set_option("PasswordLoginEnabled", "false")
    assert "turned off" in envelope(APIClient().post("/api/user/login", {"username": "u1", "password": PASSWORD}, format="json"))["message"]


def test_password_reset_by_api() -> None:
    user = User.objects.create_user("u1", PASSWORD, email="u1@example.com")
    data = envelope(APIClient().get("/api/reset_password?email=u1@example.com"))
    assert data["success"]
    token = re.search(r"/accounts/password/reset/key/([^\s/]+)/", mail.outbox[-1].body).group(1)
    assert not envelope(APIClient().post("/api/user/reset", {"email": "u1@example.com", "token": "1-bad"}, format="json"))["success"]
    assert not envelope(APIClient().post("/api/user/reset", {"email": "x@example.com", "token": token}, format="json"))["success"]
    new = envelope(APIClient().post("/api/user/reset", {"email": "u1@example.com", "token": token}, format="json"))
    assert new["success"] and len(new["data"]) == 16
    user.refresh_from_db()
    assert user.check_password(new["data"])
    # Unknown addresses get the same answer: the route tells nobody who is registered.
    assert envelope(APIClient().get("/api/reset_password?email=nobody@example.com"))["success"]
    assert not envelope(APIClient().get("/api/reset_password?email=nonsense"))["success"]


def test_self_update_and_delete(make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    client = client_for(user)
    updated = envelope(client.put("/api/user/self", {"display_name": "Ada", "username": "ada_l"}, format="json"))
    assert updated["data"]["display_name"] == "Ada" and updated["data"]["username"] == "ada_l"
    wrong = envelope(client.put("/api/user/self", {"password": PASSWORD, "original_password": "nope"}, format="json"))
    assert not wrong["success"] and "original_password" in wrong["message"]
    assert envelope(client.put("/api/user/self", {"password": PASSWORD, "original_password": "pw-12345678"}, format="json"))["success"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD) and user.display_name == "Ada"
    assert envelope(client.delete("/api/user/self"))["success"]
    assert User.objects.get(pk=user.pk).status == UserStatus.DELETED
    assert client.get("/api/user/self").status_code == 401  # its access token is gone too


def test_root_cannot_delete_itself() -> None:
    root = User.objects.get(username="root")
    data = envelope(client_for(root).delete("/api/user/self"))
    assert not data["success"] and "root" in data["message"]


def test_aff_topup_models_and_dashboard(make_user, make_channel, unique_model: str) -> None:  # type: ignore[no-untyped-def]
    user = make_user(quota=0)
    client = client_for(user)
    code = envelope(client.get("/api/user/aff"))["data"]
    assert code and envelope(client.get("/api/user/aff"))["data"] == code
    [(_, raw)] = redemptions_create(name="gift", quota=1234, count=1, created_by=None)
    assert envelope(client.post("/api/user/topup", {"key": raw}, format="json"))["data"] == 1234
    used = envelope(client.post("/api/user/topup", {"key": raw}, format="json"))
    assert not used["success"] and "already been used" in used["message"]
    assert not envelope(client.post("/api/user/topup", {}, format="json"))["success"]
    user.refresh_from_db()
    assert user.quota == 1234
    make_channel(unique_model)
    assert unique_model in envelope(client.get("/api/user/available_models"))["data"]
    ConsumeLog.objects.create(user=user, model_name=unique_model, quota=10, prompt_tokens=3, completion_tokens=4)
    [row] = envelope(client.get("/api/user/dashboard"))["data"]
    assert (row["model_name"], row["request_count"], row["quota"], row["prompt_tokens"]) == (unique_model, 1, 10, 3)


def test_self_logs_search_and_stat(make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    other = make_user()
    ConsumeLog.objects.create(user=user, model_name="alpha", token_name="ci", quota=10, request_id="r-alpha")
    ConsumeLog.objects.create(user=user, model_name="beta", quota=20, request_id="r-beta")
    ConsumeLog.objects.create(user=user, type=LogType.TOPUP, quota=999)
    ConsumeLog.objects.create(user=other, model_name="alpha", quota=40, request_id="r-other")
    client = client_for(user)
    listed = envelope(client.get("/api/log/self"))
    assert listed["total"] == 3 and "channel" not in listed["data"][0]
    assert [r["model_name"] for r in envelope(client.get("/api/log/self?model_name=alpha"))["data"]] == ["alpha"]
    assert envelope(client.get("/api/log/self?type=2"))["total"] == 2
    assert envelope(client.get("/api/log/self/stat"))["data"] == {"quota": 30}
    assert envelope(client.get("/api/log/self/stat?token_name=ci"))["data"] == {"quota": 10}
    assert [r["request_id"] for r in envelope(client.get("/api/log/self/search?keyword=r-alpha"))["data"]] == ["r-alpha"]
    assert envelope(client.get("/api/log/self/search?keyword=r-other"))["data"] == []
    bad = envelope(client.get("/api/log/self?start_timestamp=yesterday"))
    assert not bad["success"] and "start_timestamp" in bad["message"]
