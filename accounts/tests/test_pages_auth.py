"""Sign-up, e-mail verification, log-in, password reset, invites, OAuth buttons and the strict
rate limit on the web pages (allauth with our adapters), through Django's test client."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client, override_settings

from accounts.models import Role, User
from billing.models import ConsumeLog, LogType
from relay.models import Option

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-pass-42"


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    cache.clear()  # the rate limiter's counters live there


def set_option(key: str, value: str) -> None:
    Option.objects.update_or_create(key=key, defaults={"value": value})


def sign_up(client: Client, username: str = "newbie", email: str = "newbie@example.com", **extra: str):  # type: ignore[no-untyped-def]
    data = {"username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD, **extra}
    return client.post("/accounts/signup/", data)


def confirmation_link() -> str:
    assert mail.outbox, "no e-mail was sent"
    match = re.search(r"https?://[^\s]+/accounts/confirm-email/[^\s/]+/", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(0)


def test_sign_up_verifies_the_email_then_logs_in_and_grants_the_welcome_quota() -> None:
    set_option("QuotaForNewUser", "1000")
    client = Client()
    response = sign_up(client)
    assert response.status_code == 302 and response["Location"].endswith("/accounts/confirm-email/")
    user = User.objects.get(username="newbie")
    assert user.quota == 1000 and user.email == "newbie@example.com" and user.aff_code
    assert ConsumeLog.objects.filter(user=user, type=LogType.SYSTEM, quota=1000).exists()
    assert client.get("/dashboard/").status_code == 302  # not signed in before verifying

    # Logging in before verifying only re-sends the link.
    response = Client().post("/accounts/login/", {"login": "newbie", "password": PASSWORD})
    assert response.status_code == 302 and "confirm-email" in response["Location"]

    link = confirmation_link()
    response = client.get(link.split("://", 1)[1].partition("/")[2].join(["/", ""]))
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200

    fresh = Client()
    response = fresh.post("/accounts/login/", {"login": "newbie", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    response = fresh.post("/accounts/login/", {"login": "newbie@example.com", "password": PASSWORD})
    assert response.status_code == 302


def test_without_email_verification_sign_up_logs_in_at_once() -> None:
    set_option("EmailVerificationEnabled", "false")
    client = Client()
    assert sign_up(client)["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200


def test_users_without_an_email_address_log_in_directly() -> None:
    User.objects.create_user("oldtimer", PASSWORD)  # created by an operator, never had an address
    response = Client().post("/accounts/login/", {"login": "oldtimer", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"


def test_wrong_password_is_a_form_error() -> None:
    User.objects.create_user("oldtimer", PASSWORD)
    response = Client().post("/accounts/login/", {"login": "oldtimer", "password": "nope-nope-nope"})
    assert response.status_code == 200
    assert "not correct" in response.content.decode()


def test_invite_link_rewards_both_sides() -> None:
    set_option("EmailVerificationEnabled", "false")
    set_option("QuotaForNewUser", "100")
    set_option("QuotaForInvitee", "20")
    set_option("QuotaForInviter", "7")
    inviter = User.objects.create_user("host", PASSWORD, aff_code="HOSTCODE")
    client = Client()
    page = client.get("/accounts/signup/?aff=HOSTCODE").content.decode()
    assert 'value="HOSTCODE"' in page
    sign_up(client, aff_code="HOSTCODE")
    guest = User.objects.get(username="newbie")
    inviter.refresh_from_db()
    assert guest.inviter_id == inviter.pk and guest.quota == 120 and inviter.quota == 7


def test_unknown_invite_code_is_refused_and_nobody_is_created() -> None:
    response = sign_up(Client(), aff_code="NOPE")
    assert response.status_code == 200
    assert "invite code is not valid" in response.content.decode()
    assert not User.objects.filter(username="newbie").exists()


def test_email_domain_allow_list() -> None:
    set_option("EmailDomainRestrictionEnabled", "true")
    set_option("EmailDomainWhitelist", "corp.example")
    response = sign_up(Client(), email="x@gmail.example")
    assert response.status_code == 200 and "domain are not allowed" in response.content.decode()
    assert not User.objects.filter(username="newbie").exists()
    assert sign_up(Client(), email="x@corp.example").status_code == 302


@pytest.mark.parametrize(("option", "text"), [("RegisterEnabled", "Sign Up Closed"), ("PasswordRegisterEnabled", "turned off")])
def test_closed_registration(option: str, text: str) -> None:
    set_option(option, "false")
    response = sign_up(Client())
    assert text in response.content.decode()
    assert not User.objects.filter(username="newbie").exists()


def test_password_login_can_be_turned_off_except_for_root() -> None:
    set_option("PasswordLoginEnabled", "false")
    User.objects.create_user("common", PASSWORD)
    User.objects.create_user("boss", PASSWORD, role=Role.ROOT)
    refused = Client().post("/accounts/login/", {"login": "common", "password": PASSWORD})
    assert refused.status_code == 200 and "turned off" in refused.content.decode()
    assert Client().post("/accounts/login/", {"login": "boss", "password": PASSWORD}).status_code == 302


def test_disabled_user_cannot_log_in() -> None:
    User.objects.create_user("gone", PASSWORD, status=2)
    response = Client().post("/accounts/login/", {"login": "gone", "password": PASSWORD})
    assert "/dashboard/" not in response.get("Location", "")


def test_password_reset_by_email_link() -> None:
    User.objects.create_user("forgetful", "old-password-123", email="f@example.com")
    client = Client()
    assert client.post("/accounts/password/reset/", {"email": "f@example.com"}).status_code == 302
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/[^\s]+/)", mail.outbox[-1].body).group(1)
    form_url = client.get(link)["Location"]
    response = client.post(form_url, {"password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    assert User.objects.get(username="forgetful").check_password(PASSWORD)


def test_oauth_buttons_follow_the_options() -> None:
    assert "GitHub" not in Client().get("/accounts/login/").content.decode()
    set_option("GitHubOAuthEnabled", "true")
    set_option("GitHubClientId", "gh-client-id")
    set_option("GitHubClientSecret", "gh-secret")
    set_option("OidcEnabled", "true")
    set_option("OidcClientId", "oidc-client")
    set_option("OidcWellKnown", "https://id.example/.well-known/openid-configuration")
    page = Client().get("/accounts/login/").content.decode()
    assert "GitHub" in page and "OpenID Connect" in page
    response = Client().post("/accounts/github/login/")
    assert response.status_code == 302
    assert response["Location"].startswith("https://github.com/login/oauth/authorize?client_id=gh-client-id")


def test_github_sign_up_records_the_github_id_and_rewards() -> None:
    from allauth.socialaccount.models import SocialAccount, SocialLogin
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.test import RequestFactory

    from accounts.adapters import SocialAccountAdapter

    set_option("QuotaForNewUser", "55")
    request = RequestFactory().get("/")
    SessionMiddleware(lambda r: None).process_request(request)  # type: ignore[arg-type]
    login = SocialLogin(user=User(username="octocat", email="octo@example.com"), account=SocialAccount(provider="github", uid="583231"))
    user = SocialAccountAdapter().save_user(request, login)
    user.refresh_from_db()
    assert user.github_id == "583231" and user.quota == 55 and not user.has_usable_password()


@override_settings(RATE_LIMIT_DISABLED=False, CRITICAL_RATE_LIMIT=3)
def test_strict_rate_limit_on_log_in_sign_up_and_reset() -> None:
    client = Client()
    for _ in range(2):
        assert client.post("/accounts/login/", {"login": "x", "password": "y"}).status_code == 200
    assert client.post("/accounts/password/reset/", {"email": "a@example.com"}).status_code == 302
    refused = client.post("/accounts/signup/", {"username": "zzz"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert client.get("/accounts/login/").status_code == 200  # looking at the page is free
    assert client.get("/accounts/confirm-email/whatever/").status_code == 429
