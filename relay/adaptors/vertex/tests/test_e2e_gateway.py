"""Vertex AI channels through the live gateway: the gateway fetches an OAuth token from the fake's
token endpoint with the channel's service-account key, then calls the fake's Vertex routes."""

from __future__ import annotations

import anthropic
import pytest

from billing.models import ConsumeLog
from relay.tests.helpers import client

from .keys import service_account_json

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = "Say hello in one sentence."
UPSTREAM_MODELS = {"gemini": "gemini-2.5-flash", "claude": "claude-sonnet-4-5@20250929"}


@pytest.fixture(params=sorted(UPSTREAM_MODELS))
def vertex_channel(request, make_channel, fake_provider, unique_model):  # type: ignore[no-untyped-def]
    upstream = UPSTREAM_MODELS[request.param]
    return make_channel(unique_model, type=42, key=service_account_json(fake_provider.base_url + "/token"),
                        config={"region": "us-east5"}, model_mapping={unique_model: upstream})


@pytest.fixture
def raw_key(make_user, make_key):  # type: ignore[no-untyped-def]
    return make_key(make_user(quota=100_000_000))[1]


def upstream_paths(fake_provider) -> list[str]:  # type: ignore[no-untyped-def]
    return [r["path"] for r in fake_provider.requests() if "/projects/" in r["path"]]


@pytest.mark.parametrize("stream", [False, True])
def test_chat_caller(live_gateway, fake_provider, vertex_channel, raw_key, unique_model, stream):
    api = client(live_gateway.url, raw_key).chat.completions
    messages = [{"role": "user", "content": HELLO}]
    if stream:
        chunks = list(api.create(model=unique_model, messages=messages, stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    else:
        text = api.create(model=unique_model, messages=messages).choices[0].message.content
    assert text == "Fake reply to: " + HELLO
    upstream = vertex_channel.model_mapping[unique_model]
    path = upstream_paths(fake_provider)[-1]
    assert path.startswith("/v1/projects/test-project/locations/us-east5/publishers/")
    assert f"/models/{upstream}:" in path
    log = ConsumeLog.objects.get(model_name=unique_model)
    assert log.quota > 0 and log.prompt_tokens > 0 and log.completion_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_messages_caller(live_gateway, vertex_channel, raw_key, unique_model, stream):
    api = anthropic.Anthropic(base_url=live_gateway.url, api_key=raw_key, max_retries=0, timeout=20).messages
    kwargs = {"model": unique_model, "max_tokens": 256, "messages": [{"role": "user", "content": HELLO}]}
    if stream:
        with api.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = api.create(**kwargs)
    assert message.content[0].text == "Fake reply to: " + HELLO and message.usage.output_tokens > 0
