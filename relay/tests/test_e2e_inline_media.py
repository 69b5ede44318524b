"""Image URLs inlined for upstreams that cannot fetch them, through the live gateway: the fake
provider serves the image, and gets it back inline in the upstream request; with the default
settings the same loopback URL is refused (SSRF guard) in the caller's format, nothing charged."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import ApiKey, User
from billing.models import ChargeStatus, RequestCharge
from conftest import LiveGateway, start_gateway, stop_gateway
from fakeprovider.server import TINY_PNG

from .helpers import client, post, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def trusting_gateway(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """A gateway whose operator lets media fetches reach loopback (where the fake provider is)."""
    gateway = start_gateway(tmp_path_factory.mktemp("gateway-media"), {"USER_CONTENT_ALLOWED_NETWORKS": "127.0.0.0/8"})
    yield gateway
    stop_gateway(gateway)


def chat_with_image(model: str, url: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is in this image?"}, {"type": "image_url", "image_url": {"url": url}}],
            }
        ],
    }


def upstream_bodies(fake_provider: Any, model: str) -> list[dict[str, Any]]:
    return [r["body"] for r in fake_provider.requests() if model in r["path"] and isinstance(r.get("body"), dict)]


def test_gemini_gets_the_image_inline(trusting_gateway, fake_provider, make_channel, make_user, make_key, unique_model):  # type: ignore[no-untyped-def]
    make_channel(unique_model, type=24)
    raw = make_key(make_user())[1]
    image_url = fake_provider.base_url + "/_media/tiny.png"
    answer = client(trusting_gateway.url, raw).chat.completions.create(**chat_with_image(unique_model, image_url))
    assert answer.choices[0].message.content
    (body,) = upstream_bodies(fake_provider, unique_model)
    parts = body["contents"][0]["parts"]
    assert parts[0] == {"text": "What is in this image?"}
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(TINY_PNG).decode()}}
    assert "fileData" not in str(body)


def test_bedrock_converse_gets_the_image_inline(trusting_gateway, fake_provider, make_channel, make_user, make_key, unique_model):  # type: ignore[no-untyped-def]
    make_channel(unique_model, type=33, key="AKIAFAKE|secret|us-east-1", model_mapping={unique_model: f"meta.{unique_model}-v1:0"})
    raw = make_key(make_user())[1]
    image_url = fake_provider.base_url + "/_media/tiny.png"
    answer = client(trusting_gateway.url, raw).chat.completions.create(**chat_with_image(unique_model, image_url))
    assert answer.choices[0].message.content
    (body,) = upstream_bodies(fake_provider, unique_model)
    image = body["messages"][0]["content"][1]
    assert image == {"image": {"format": "png", "source": {"bytes": base64.b64encode(TINY_PNG).decode()}}}


@pytest.fixture
def funded(make_user, make_key) -> tuple[User, ApiKey, str]:  # type: ignore[no-untyped-def]
    user = make_user(quota=1_000_000)
    key, raw = make_key(user, remain_quota=1_000_000)
    return user, key, raw


def assert_nothing_charged(user: User, key: ApiKey) -> None:
    charge = wait_for(lambda: RequestCharge.objects.filter(user_id=user.pk).exclude(status=ChargeStatus.HELD).first())
    assert charge.status == ChargeStatus.REFUNDED and charge.quota == 0
    user.refresh_from_db()
    key.refresh_from_db()
    assert (user.quota, user.used_quota, key.remain_quota, key.used_quota) == (1_000_000, 0, 1_000_000, 0)


def test_loopback_url_refused_by_default_in_chat_format(live_gateway, fake_provider, make_channel, funded, unique_model):  # type: ignore[no-untyped-def]
    make_channel(unique_model, type=24)
    user, key, raw = funded
    image_url = fake_provider.base_url + "/_media/tiny.png"
    status, headers, body = post(
        live_gateway.url + "/v1/chat/completions", chat_with_image(unique_model, image_url), {"Authorization": f"Bearer {raw}"}
    )
    assert status == 400, body
    assert set(body) == {"error"} and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "invalid_image_url" and body["error"]["param"] == "messages"
    assert image_url in body["error"]["message"] and "loopback" in body["error"]["message"]
    assert headers["x-oneapi-request-id"] in body["error"]["message"]
    assert not upstream_bodies(fake_provider, unique_model)  # the upstream was never called
    assert_nothing_charged(user, key)


def test_loopback_url_refused_by_default_in_messages_format(live_gateway, fake_provider, make_channel, funded, unique_model):  # type: ignore[no-untyped-def]
    make_channel(unique_model, type=24)
    user, key, raw = funded
    image_url = fake_provider.base_url + "/_media/tiny.png"
    payload = {
        "model": unique_model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": image_url}}]}],
    }
    status, _, body = post(live_gateway.url + "/v1/messages", payload, {"x-api-key": raw, "anthropic-version": "2023-06-01"})
    assert status == 400, body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert image_url in body["error"]["message"] and "loopback" in body["error"]["message"]
    assert not upstream_bodies(fake_provider, unique_model)
    assert_nothing_charged(user, key)
