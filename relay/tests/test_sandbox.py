"""The sandbox: the official openai and anthropic SDKs parse every reply, stream and not; bad input
gets each format's error; the per-address rate limit answers 429 with Retry-After."""

from __future__ import annotations

import random
from typing import Any

import anthropic
import openai
import pytest
from django.core.cache import cache
from django.test import Client, override_settings

from billing.models import ConsumeLog

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Hello"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def own_address() -> dict[str, str]:
    """The sandbox limits each client address; uvicorn takes it from X-Forwarded-For when the peer
    is loopback, so each test gets an address of its own, untouched by other tests' requests."""
    return {"X-Forwarded-For": f"198.18.{random.randint(0, 255)}.{random.randint(1, 254)}"}


@pytest.fixture
def oai(live_gateway: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{live_gateway.url}/sandbox/v1", api_key="unused", max_retries=0, default_headers=own_address()
    )


@pytest.fixture
def claude(live_gateway: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=f"{live_gateway.url}/sandbox", api_key="unused", max_retries=0, default_headers=own_address()
    )


def test_chat_completion(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="any-model", messages=HELLO)  # type: ignore[arg-type]
    assert completion.object == "chat.completion" and completion.model == "oneapi-sandbox"
    assert "sandbox" in (completion.choices[0].message.content or "")
    assert completion.choices[0].finish_reason == "stop" and completion.usage is not None


def test_chat_completion_stream(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="any-model", messages=HELLO, stream=True, stream_options={"include_usage": True}  # type: ignore[arg-type]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "mock reply" in text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 0


def test_chat_forced_tool_call(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="m", messages=HELLO, tools=[WEATHER_TOOL], tool_choice="required"  # type: ignore[arg-type,list-item]
    )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and call.function.arguments == "{}"  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"


def test_responses(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="any-model", input="Hello")
    assert response.status == "completed" and "/v1/responses" in response.output_text


def test_responses_stream(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model="any-model", input="Hello") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text and "sandbox" in final.output_text
    events = list(oai.responses.create(model="m", input="Hi", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"


def test_messages(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="any-model", max_tokens=64, messages=HELLO)  # type: ignore[arg-type]
    assert message.type == "message" and message.stop_reason == "end_turn"
    assert "/v1/messages" in message.content[0].text  # type: ignore[union-attr]


def test_messages_stream(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model="any-model", max_tokens=64, messages=HELLO) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text and "sandbox" in text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"


def test_messages_forced_tool_stream(claude: anthropic.Anthropic) -> None:
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
    with claude.messages.stream(
        model="m", max_tokens=64, messages=HELLO, tools=[tool], tool_choice={"type": "any"}  # type: ignore[arg-type,list-item]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].name == "get_weather"  # type: ignore[union-attr]


def test_sdk_errors_in_each_format(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    with pytest.raises(openai.BadRequestError) as chat_error:
        oai.chat.completions.create(model="m", messages=[])
    assert chat_error.value.status_code == 400 and "messages" in str(chat_error.value)
    with pytest.raises(anthropic.BadRequestError) as messages_error:
        claude.messages.create(model="m", max_tokens=0, messages=HELLO)  # type: ignore[arg-type]
    assert messages_error.value.body["type"] == "error"  # type: ignore[index]
    assert not ConsumeLog.objects.exists()  # never billed, never logged


@pytest.mark.parametrize(
    ("path", "shape"),
    [("chat/completions", "openai"), ("responses", "openai"), ("messages", "anthropic")],
)
def test_bad_json_gets_the_format_error(path: str, shape: str) -> None:
    cache.clear()
    response = Client().post(f"/sandbox/v1/{path}", data="{not json", content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    if shape == "openai":
        assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] == "invalid_json"
    else:
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


def test_get_is_405_in_json() -> None:
    response = Client().get("/sandbox/v1/chat/completions")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


@override_settings(SANDBOX_RATE_LIMIT=3)
def test_rate_limited_per_address() -> None:
    cache.clear()
    body = '{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    statuses = [
        Client(REMOTE_ADDR="203.0.113.7").post("/sandbox/v1/chat/completions", data=body, content_type="application/json")
        for _ in range(4)
    ]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert int(statuses[-1]["Retry-After"]) >= 1 and statuses[-1].json()["error"]["type"] == "rate_limit_error"
    other = Client(REMOTE_ADDR="203.0.113.8").post("/sandbox/v1/chat/completions", data=body, content_type="application/json")
    assert other.status_code == 200
