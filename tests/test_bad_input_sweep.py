"""Bad input on every `/api` write route and every web form: a clear message (the envelope with
success=false, or the form's error), nothing changed, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiKey, Redemption, Role, User
from accounts.services import access_token_regenerate
from billing.models import ConsumeLog
from channels_app.models import Channel
from relay.models import Option

pytestmark = pytest.mark.django_db

# (method, path) of every /api route that takes input; `{key}`, `{user}`, `{code}` are filled in.
WRITE_ROUTES = [
    ("post", "/api/user/register"),
    ("post", "/api/user/login"),
    ("post", "/api/user/reset"),
    ("put", "/api/user/self"),
    ("post", "/api/user/topup"),
    ("post", "/api/token/"),
    ("put", "/api/token/"),
    ("put", "/api/token/?status_only=true"),
    ("post", "/api/user/"),
    ("put", "/api/user/"),
    ("post", "/api/user/manage"),
    ("post", "/api/topup"),
    ("post", "/api/redemption/"),
    ("put", "/api/redemption/"),
    ("put", "/api/redemption/?status_only=true"),
    ("put", "/api/option/"),
    ("post", "/api/channel/"),
    ("put", "/api/channel/"),
]
BAD_BODIES: list[tuple[str, Any]] = [
    ("malformed JSON", "{not json"),
    ("a list", ["x"]),
    ("empty object", {}),
    ("wrong types", {"id": "abc", "name": ["x"], "quota": "lots", "username": {"a": 1}, "password": 5, "key": 7,
                     "action": 3, "count": "many", "value": None, "status": "on", "user_id": "me", "models": {"a": 1}}),
    ("out of range", {"id": -1, "name": "x" * 500, "quota": -(10**30), "count": 10**6, "status": 99, "user_id": 0}),
]
GET_FILTERS = [
    "/api/log/self?start_timestamp=abc",
    "/api/log/self?end_timestamp=-5",
    "/api/log/self/stat?type=x",
    "/api/log/?channel=abc",
    "/api/log/stat?start_timestamp=99999999999999",
    "/api/verification?email=nope",
    "/api/reset_password?email=",
]


def snapshot() -> dict[str, Any]:
    return {
        "users": list(User.objects.order_by("id").values_list("id", "username", "quota", "role", "status", "display_name", "password")),
        "keys": list(ApiKey.objects.order_by("id").values_list("id", "name", "status", "remain_quota")),
        "codes": list(Redemption.objects.order_by("id").values_list("id", "name", "status", "quota")),
        "logs": ConsumeLog.objects.count(),
        "options": list(Option.objects.order_by("key").values_list("key", "value")),
        "channels": list(Channel.objects.order_by("id").values_list("id", "name", "status")),
    }


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    cache.clear()


@pytest.fixture
def root_client(make_user, make_key) -> APIClient:  # type: ignore[no-untyped-def]
    root = User.objects.get(username="root")
    make_key(root)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=access_token_regenerate(user=root))
    return client


@pytest.mark.parametrize(("label", "payload"), BAD_BODIES, ids=[label for label, _ in BAD_BODIES])
def test_every_api_write_route_refuses_bad_bodies_cleanly(root_client: APIClient, label: str, payload: Any) -> None:
    before = snapshot()
    for method, path in WRITE_ROUTES:
        if isinstance(payload, str):
            response = getattr(root_client, method)(path, payload, content_type="application/json")
        else:
            response = getattr(root_client, method)(path, payload, format="json")
        assert response.status_code < 500, (method, path, response.status_code)
        assert response["Content-Type"].startswith("application/json"), (method, path)
        body = response.json()
        assert body["success"] is False and body["message"], (method, path, label, body)
    assert snapshot() == before


def test_bad_query_parameters_are_explained(root_client: APIClient) -> None:
    for url in GET_FILTERS:
        response = root_client.get(url)
        body = response.json()
        assert response.status_code == 200 and body["success"] is False and body["message"], (url, body)


def test_unknown_api_route_and_ids(root_client: APIClient) -> None:
    for url in ("/api/nope", "/api/user/999999", "/api/redemption/999999", "/api/token/999999"):
        response = root_client.get(url)
        assert response.status_code == 404 and response.json()["success"] is False, url


FORMS = [
    ("/keys/new/", {"name": "", "quota_usd": "-3", "expires_at": "tomorrow", "subnet": "nope"}),
    ("/topup/", {"code": "' OR 1=1 --"}),
    ("/account/", {"display_name": "x" * 300}),
    ("/account/delete/", {"confirm_username": "", "password": ""}),
    ("/accounts/signup/", {"username": "!", "email": "bad", "password1": "1", "password2": "2", "aff_code": "?"}),
    ("/accounts/login/", {"login": "", "password": ""}),
    ("/accounts/password/reset/", {"email": "not-an-email"}),
    ("/accounts/password/change/", {"oldpassword": "wrong", "password1": "1", "password2": "2"}),
]


def test_every_web_form_explains_bad_input_and_changes_nothing(make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    before = snapshot()
    for url, data in FORMS:
        client = Client()
        if not url.startswith(("/accounts/signup", "/accounts/login", "/accounts/password/reset")):
            client.force_login(user)
        response = client.post(url, data)
        assert response.status_code == 200, (url, response.status_code)
        page = response.content.decode()
        assert "errorlist" in page, url
    assert snapshot() == before


def test_admin_forms_refuse_bad_input(make_user) -> None:  # type: ignore[no-untyped-def]
    root = User.objects.get(username="root")
    client = Client()
    client.force_login(root)
    before = snapshot()
    for url, data in [
        ("/admin/accounts/redemption/add/", {"name": "", "amount_usd": "x", "count": "0"}),
        ("/admin/relay/option/add/", {"key": "QuotaForInviter", "value": "-5"}),
        ("/admin/relay/option/add/", {"key": "OidcWellKnown", "value": "ftp://x"}),
    ]:
        response = client.post(url, data)
        assert response.status_code == 200 and "errorlist" in response.content.decode(), url
    assert snapshot() == before
    assert User.objects.get(pk=root.pk).role == Role.ROOT
