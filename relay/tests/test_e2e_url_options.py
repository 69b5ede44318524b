"""`?thinking=` and `?reasoning_format=` through the live gateway (an Anthropic upstream that thinks)."""

from __future__ import annotations

import anthropic
import pytest

from .helpers import post

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def claude(make_channel, unique_model):  # type: ignore[no-untyped-def]
    model = "claude-" + unique_model  # a reasoning-capable name: ?thinking applies
    make_channel(model, type=14)
    return model


@pytest.fixture
def raw_key(make_user, make_key):  # type: ignore[no-untyped-def]
    return make_key(make_user(quota=100_000_000))[1]


@pytest.mark.parametrize("reasoning_format", ["reasoning_content", "reasoning", "thinking"])
def test_chat_caller_gets_reasoning_in_the_field_it_chose(live_gateway, claude, raw_key, reasoning_format):
    url = f"{live_gateway.url}/v1/chat/completions?thinking=true&reasoning_format={reasoning_format}"
    body = {"model": claude, "messages": [{"role": "user", "content": "Say hello in one sentence."}]}
    status, _, reply = post(url, body, {"Authorization": f"Bearer {raw_key}"})
    assert status == 200, reply
    message = reply["choices"][0]["message"]
    assert message[reasoning_format] and message["content"].startswith("Fake reply")
    others = {"reasoning_content", "reasoning", "thinking"} - {reasoning_format}
    assert not any(message.get(field) for field in others)


def test_chat_stream_reasoning_format(live_gateway, claude, raw_key):
    import json
    import urllib.request

    url = f"{live_gateway.url}/v1/chat/completions?thinking=on&reasoning_format=reasoning"
    body = {"model": claude, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as response:
        lines = [line for line in response.read().decode().split("\n") if line.startswith("data: {")]
    deltas = [json.loads(line[6:])["choices"][0]["delta"] for line in lines if json.loads(line[6:])["choices"]]
    assert any(d.get("reasoning") for d in deltas) and not any(d.get("reasoning_content") for d in deltas)


def test_without_thinking_there_is_no_reasoning(live_gateway, claude, raw_key):
    body = {"model": claude, "messages": [{"role": "user", "content": "hi"}]}
    status, _, reply = post(f"{live_gateway.url}/v1/chat/completions", body, {"Authorization": f"Bearer {raw_key}"})
    assert status == 200 and not reply["choices"][0]["message"].get("reasoning_content")


def test_messages_caller_thinking_param(live_gateway, claude, raw_key):
    client = anthropic.Anthropic(base_url=live_gateway.url, api_key=raw_key, max_retries=0, default_query={"thinking": "true"})
    message = client.messages.create(model=claude, max_tokens=4096, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].type == "thinking" and message.content[0].signature


def test_bad_values_are_400(live_gateway, claude, raw_key):
    body = {"model": claude, "messages": [{"role": "user", "content": "hi"}]}
    for query in ("thinking=maybe", "reasoning_format=xml", "thinking=true&reasoning_effort=extreme"):
        status, _, reply = post(f"{live_gateway.url}/v1/chat/completions?{query}", body, {"Authorization": f"Bearer {raw_key}"})
        assert status == 400 and reply["error"]["param"] in ("thinking", "reasoning_format", "reasoning_effort")
