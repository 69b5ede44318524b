"""GLOBAL_RELAY_RATE_LIMIT (per key) and GLOBAL_CHANNEL_RATE_LIMIT (per channel) on a live gateway.

The gateway runs with the limits on (the session's gateway has them off); counts are shared
through Redis when REDIS_CONN_STRING is set, in the gateway's memory otherwise.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from accounts.models import ApiKey
from billing.models import RequestCharge
from conftest import LiveGateway, start_gateway, stop_gateway

from .helpers import post

SETTLE = 1.0  # seconds: more than CACHE_CHANGE_POLL_SECONDS (0.2) plus a reload

pytestmark = pytest.mark.django_db(transaction=True)

KEY_LIMIT = 3
CHANNEL_LIMIT = 2


@pytest.fixture(scope="module")
def limited_gateway(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveGateway]:  # type: ignore[no-untyped-def]
    gateway = start_gateway(
        tmp_path_factory.mktemp("limited"),
        {
            "RATE_LIMIT_DISABLED": "false",
            "GLOBAL_RELAY_RATE_LIMIT": str(KEY_LIMIT),
            "GLOBAL_CHANNEL_RATE_LIMIT": str(CHANNEL_LIMIT),
            "RATE_LIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}:",
        },
    )
    yield gateway
    stop_gateway(gateway)


def chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def assert_limited(status: int, headers: dict[str, str], limit: int) -> None:
    assert status == 429
    assert headers["ratelimit-limit"] == str(limit)
    assert headers["ratelimit-remaining"] == "0"
    assert 1 <= int(headers["retry-after"]) <= 184  # the 180 s window, plus one 3 s slot in memory
    assert headers["retry-after"] == headers["ratelimit-reset"]


def test_per_key_limit_in_the_callers_format(limited_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, config={"rate_limit": 1000})  # the channel's own limit is not in the way
    user = make_user()
    key, raw = make_key(user)
    url = limited_gateway.url + "/v1/chat/completions"
    auth = {"Authorization": f"Bearer {raw}"}
    statuses = [post(url, chat(unique_model), auth)[0] for _ in range(KEY_LIMIT)]
    assert statuses == [200] * KEY_LIMIT
    status, headers, body = post(url, chat(unique_model), auth)
    assert_limited(status, headers, KEY_LIMIT)
    assert body["error"]["type"] == "rate_limit_error" and body["error"]["code"] == "rate_limit_exceeded"
    assert headers["x-oneapi-request-id"] in body["error"]["message"]
    # Refused before any quota was held.
    assert RequestCharge.objects.filter(user_id=user.pk).count() == KEY_LIMIT
    # Messages callers get Anthropic's error shape; the limit is per key, whatever the route.
    status, headers, body = post(
        limited_gateway.url + "/v1/messages",
        {"model": unique_model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        {"x-api-key": raw, "anthropic-version": "2023-06-01"},
    )
    assert_limited(status, headers, KEY_LIMIT)
    assert body == {"type": "error", "error": {"type": "rate_limit_error", "message": body["error"]["message"]}}
    # Another key of the same user has its own budget.
    _, other = make_key(user)
    assert post(url, chat(unique_model), {"Authorization": f"Bearer {other}"})[0] == 200
    assert ApiKey.objects.filter(pk=key.pk).exists()


def test_per_channel_limit_moves_to_another_channel_then_refuses(
    limited_gateway, make_user, make_key, make_channel, unique_model
):
    first = make_channel(unique_model)
    second = make_channel(unique_model)
    time.sleep(SETTLE)  # the gateway picks up both channels within its poll interval
    url = limited_gateway.url + "/v1/chat/completions"
    keys = [make_key(make_user())[1] for _ in range(3)]  # each key stays under its own limit
    served = []
    for i in range(2 * CHANNEL_LIMIT):
        status, headers, body = post(url, chat(unique_model), {"Authorization": f"Bearer {keys[i % 3]}"})
        assert status == 200, body
        served.append(RequestCharge.objects.get(request_id=headers["x-oneapi-request-id"]).request_id)
    assert len(served) == 2 * CHANNEL_LIMIT
    from billing.models import ConsumeLog

    per_channel = {
        channel.pk: ConsumeLog.objects.filter(request_id__in=served, channel_id=channel.pk).count() for channel in (first, second)
    }
    assert per_channel == {first.pk: CHANNEL_LIMIT, second.pk: CHANNEL_LIMIT}
    status, headers, body = post(url, chat(unique_model), {"Authorization": f"Bearer {keys[2]}"})
    assert_limited(status, headers, CHANNEL_LIMIT)
    assert "rate limit" in body["error"]["message"]


def test_a_channel_sets_its_own_limit(limited_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, config={"rate_limit": 1})
    url = limited_gateway.url + "/v1/chat/completions"
    keys = [make_key(make_user())[1] for _ in range(2)]
    assert post(url, chat(unique_model), {"Authorization": f"Bearer {keys[0]}"})[0] == 200
    status, headers, _ = post(url, chat(unique_model), {"Authorization": f"Bearer {keys[1]}"})
    assert_limited(status, headers, 1)
