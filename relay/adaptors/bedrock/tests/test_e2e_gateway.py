"""Bedrock channels through the live gateway (the production ASGI app), official SDKs as
clients, the fake provider's Bedrock mode as upstream: signing, both APIs, streams, billing."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from billing.models import ConsumeLog
from relay.tests.helpers import client

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "AKIDEXAMPLE|wJalrXUtnFEMI/K7MDENG|us-east-1"
UPSTREAM_MODELS = {"claude": "anthropic.claude-3-5-sonnet-20240620-v1:0", "converse": "amazon.nova-pro-v1:0"}
HELLO = "Say hello in one sentence."


@pytest.fixture(params=sorted(UPSTREAM_MODELS))
def bedrock_model(request, make_channel, unique_model):  # type: ignore[no-untyped-def]
    make_channel(unique_model, type=33, key=KEY, model_mapping={unique_model: UPSTREAM_MODELS[request.param]})
    return unique_model


@pytest.fixture
def raw_key(make_user, make_key):  # type: ignore[no-untyped-def]
    return make_key(make_user(quota=100_000_000))[1]


def billed(model: str) -> ConsumeLog:
    (log,) = ConsumeLog.objects.filter(model_name=model)
    assert log.quota > 0 and log.prompt_tokens > 0 and log.completion_tokens > 0
    return log


@pytest.mark.parametrize("stream", [False, True])
def test_chat_caller(live_gateway, bedrock_model, raw_key, stream):  # type: ignore[no-untyped-def]
    api = client(live_gateway.url, raw_key).chat.completions
    messages = [{"role": "user", "content": HELLO}]
    if stream:
        chunks = list(api.create(model=bedrock_model, messages=messages, stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    else:
        text = api.create(model=bedrock_model, messages=messages).choices[0].message.content
    assert text == "Fake reply to: " + HELLO
    billed(bedrock_model)


@pytest.mark.parametrize("stream", [False, True])
def test_messages_caller_tools(live_gateway, bedrock_model, raw_key, stream):  # type: ignore[no-untyped-def]
    api = anthropic.Anthropic(base_url=live_gateway.url, api_key=raw_key, max_retries=0, timeout=20).messages
    kwargs: dict[str, Any] = {
        "model": bedrock_model, "max_tokens": 300,
        "messages": [{"role": "user", "content": "weather in Paris?"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }
    if stream:
        with api.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = api.create(**kwargs)
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "example"}
    billed(bedrock_model)


def test_upstream_throttling_is_reported(live_gateway, make_channel, unique_model, raw_key):  # type: ignore[no-untyped-def]
    make_channel(unique_model, scenario="429", type=33, key=KEY, model_mapping={unique_model: UPSTREAM_MODELS["converse"]})
    api = client(live_gateway.url, raw_key).chat.completions
    with pytest.raises(Exception) as caught:
        api.create(model=unique_model, messages=[{"role": "user", "content": HELLO}])
    assert getattr(caught.value, "status_code", None) == 429
