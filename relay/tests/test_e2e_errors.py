"""Bad input gets the right status and an OpenAI-shaped error, and leaves every quota untouched."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiKey
from billing.models import RequestCharge

from .helpers import post

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(live_gateway, make_user, make_key, make_channel, unique_model):  # type: ignore[no-untyped-def]
    make_channel(unique_model)
    user = make_user(quota=1_000_000)
    key, raw = make_key(user, remain_quota=1_000_000)
    return live_gateway.url + "/v1/chat/completions", user, key, raw, unique_model


def assert_untouched(user, key) -> None:  # type: ignore[no-untyped-def]
    user.refresh_from_db()
    key.refresh_from_db()
    assert (user.quota, user.used_quota, key.remain_quota, key.used_quota) == (1_000_000, 0, 1_000_000, 0)
    assert not RequestCharge.objects.filter(user_id=user.pk).exists()


def assert_openai_error(status: int, headers: dict[str, str], body: object, expected_status: int, code: str | None) -> None:
    assert status == expected_status, body
    assert headers["content-type"].startswith("application/json")
    assert headers["x-oneapi-request-id"]
    assert isinstance(body, dict) and set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert headers["x-oneapi-request-id"] in body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


def good_body(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


def test_no_key(setup):  # type: ignore[no-untyped-def]
    url, user, key, _, model = setup
    assert_openai_error(*post(url, good_body(model)), 401, "missing_api_key")
    assert_untouched(user, key)


def test_wrong_key(setup):  # type: ignore[no-untyped-def]
    url, user, key, _, model = setup
    assert_openai_error(*post(url, good_body(model), {"Authorization": "Bearer sk-" + "x" * 48}), 401, "invalid_api_key")
    assert_untouched(user, key)


@pytest.mark.parametrize(
    "change, status, code",
    [
        ({"status": 2}, 401, "api_key_disabled"),
        ({"expires_at": "past"}, 401, "api_key_expired"),
        ({"remain_quota": 0}, 403, "insufficient_quota"),
        ({"allowed_models": "some-other-model"}, 403, "model_not_allowed"),
        ({"subnet": "10.1.2.0/24"}, 403, "ip_not_allowed"),
    ],
)
def test_key_checks(setup, change, status, code):  # type: ignore[no-untyped-def]
    url, user, key, raw, model = setup
    if change.get("expires_at") == "past":
        change = {"expires_at": timezone.now() - timedelta(minutes=1)}
    ApiKey.objects.filter(pk=key.pk).update(**change)
    assert_openai_error(*post(url, good_body(model), {"Authorization": f"Bearer {raw}"}), status, code)
    if "remain_quota" not in change:
        assert_untouched(user, key)


def test_quota_too_small_for_the_hold(setup):  # type: ignore[no-untyped-def]
    url, user, key, raw, model = setup
    ApiKey.objects.filter(pk=key.pk).update(remain_quota=1)
    assert_openai_error(*post(url, good_body(model), {"Authorization": f"Bearer {raw}"}), 403, "insufficient_quota")
    key.refresh_from_db()
    assert key.remain_quota == 1 and not RequestCharge.objects.exists()


def test_user_quota_too_small(setup):  # type: ignore[no-untyped-def]
    url, user, key, raw, model = setup
    user.quota = 3
    user.save()
    assert_openai_error(*post(url, good_body(model), {"Authorization": f"Bearer {raw}"}), 403, "insufficient_user_quota")
    user.refresh_from_db()
    key.refresh_from_db()
    assert (user.quota, key.remain_quota) == (3, 1_000_000)


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, None),
        (b'"text"', 400, None),
        (json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(), 400, "missing_model"),
        ("MODEL_NO_MESSAGES", 400, None),
        ("MODEL_EMPTY_MESSAGES", 400, None),
        ("UNKNOWN_MODEL", 404, "model_not_found"),
        ("OVERSIZED", 413, "request_too_large"),
    ],
)
def test_bad_bodies(setup, body, status, code):  # type: ignore[no-untyped-def]
    url, user, key, raw, model = setup
    if body == "MODEL_NO_MESSAGES":
        body = json.dumps({"model": model}).encode()
    elif body == "MODEL_EMPTY_MESSAGES":
        body = json.dumps({"model": model, "messages": []}).encode()
    elif body == "UNKNOWN_MODEL":
        body = json.dumps(good_body("no-such-model-anywhere")).encode()
    elif body == "OVERSIZED":
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "x" * (33 * 1024 * 1024)}]}).encode()
    assert_openai_error(*post(url, body, {"Authorization": f"Bearer {raw}"}), status, code)
    assert_untouched(user, key)


def test_unknown_v1_route_is_json_404(live_gateway):  # type: ignore[no-untyped-def]
    status, headers, body = post(live_gateway.url + "/v1/no/such/route", {"a": 1})
    assert status == 404 and body["error"]["code"] == "unknown_url"


def test_embeddings_without_input(setup, live_gateway):  # type: ignore[no-untyped-def]
    _, user, key, raw, model = setup
    reply = post(live_gateway.url + "/v1/embeddings", {"model": model}, {"Authorization": f"Bearer {raw}"})
    assert_openai_error(*reply, 400, None)
    assert_untouched(user, key)


def test_odd_shapes_inside_messages_are_400_not_500(setup):  # type: ignore[no-untyped-def]
    url, user, key, raw, model = setup
    bodies = [
        {"model": model, "messages": [{"role": {}, "content": "hi"}]},
        {"model": model, "messages": [{"role": "user", "content": {"nested": True}}]},
        {"model": model, "messages": ["just a string"]},
    ]
    for body in bodies:
        status, headers, reply = post(url, body, {"Authorization": f"Bearer {raw}"})
        assert status in (400, 200), reply  # pass-through may let the upstream judge; never a 500
        assert status != 500


def test_newline_in_a_v1_path_is_json_404(live_gateway):  # type: ignore[no-untyped-def]
    from .helpers import get

    status, headers, body = get(live_gateway.url + "/v1/models/a%0Ab", {"Authorization": "Bearer sk-x"})
    assert status in (401, 404) and headers["content-type"].startswith("application/json")
