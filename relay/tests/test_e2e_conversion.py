"""Every caller format against every upstream protocol, through the live gateway, with the
official SDKs as clients (the anthropic SDK's stream accumulator checks the event order)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from billing.models import ConsumeLog
from relay.adaptors.vertex.tests.keys import service_account_json
from relay.models import StoredResponse

from .helpers import client

pytestmark = pytest.mark.django_db(transaction=True)

# Channel settings for each upstream protocol the fake provider speaks.
VERTEX_KEY = "<a Vertex service-account key for the fake>"
UPSTREAMS: dict[str, dict[str, Any]] = {
    "openai-chat": {"type": 8},
    "openai-responses": {"type": 50, "config": {"api_format": "response"}},
    "anthropic": {"type": 14},
    "gemini": {"type": 24},
    "azure": {"type": 3},
    "deepseek-no-json-schema": {"type": 36, "scenario": "no_json_schema"},
    # Bedrock: Claude through InvokeModel, other models through Converse (the model id decides).
    "bedrock-claude": {"type": 33, "key": "AKIAFAKE|secret|us-east-1", "model_mapping": "anthropic.claude-fake-v1:0"},
    "bedrock-converse": {"type": 33, "key": "AKIAFAKE|secret|us-east-1", "model_mapping": "meta.llama-fake-v1:0"},
    # Vertex AI: a service-account key whose token_uri is the fake's OAuth endpoint.
    "vertex-gemini": {"type": 42, "key": VERTEX_KEY, "config": {"region": "us-east5"}, "model_mapping": "gemini-2.5-flash"},
    "vertex-claude": {"type": 42, "key": VERTEX_KEY, "config": {"region": "us-east5"}, "model_mapping": "claude-sonnet-4-5@20250929"},
}
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}
HELLO = "Say hello in one sentence."


@pytest.fixture(params=sorted(UPSTREAMS))
def upstream(request, make_channel, unique_model, fake_provider):  # type: ignore[no-untyped-def]
    settings = dict(UPSTREAMS[request.param])
    if isinstance(settings.get("model_mapping"), str):
        settings["model_mapping"] = {unique_model: settings["model_mapping"]}
    if settings.get("key") == VERTEX_KEY:
        settings["key"] = service_account_json(fake_provider.base_url + "/token")
    make_channel(unique_model, **settings)
    return request.param


@pytest.fixture
def raw_key(make_user, make_key):  # type: ignore[no-untyped-def]
    return make_key(make_user(quota=100_000_000))[1]


def anthropic_client(url: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=20)


def assert_billed(model: str, count: int = 1) -> None:
    logs = list(ConsumeLog.objects.filter(model_name=model))
    assert len(logs) == count and all(log.quota > 0 and log.prompt_tokens > 0 and log.completion_tokens > 0 for log in logs)


# ------------------------------------------------------------------------------------------ chat


@pytest.mark.parametrize("stream", [False, True])
def test_chat_caller(live_gateway, upstream, raw_key, unique_model, stream):
    api = client(live_gateway.url, raw_key).chat.completions
    messages = [{"role": "user", "content": HELLO}]
    if stream:
        chunks = list(api.create(model=unique_model, messages=messages, stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    else:
        text = api.create(model=unique_model, messages=messages).choices[0].message.content
    assert text.startswith("Fake reply to: Say hello")
    assert_billed(unique_model)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_caller_tools(live_gateway, upstream, raw_key, unique_model, stream):
    api = client(live_gateway.url, raw_key).chat.completions
    kwargs = {
        "model": unique_model,
        "messages": [{"role": "user", "content": "weather in Paris?"}],
        "tools": [{"type": "function", "function": WEATHER}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    if stream:
        name, arguments = None, ""
        for chunk in api.create(stream=True, **kwargs):
            for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                name = name or call.function.name
                arguments += call.function.arguments or ""
    else:
        call = api.create(**kwargs).choices[0].message.tool_calls[0]
        name, arguments = call.function.name, call.function.arguments
    assert name == "get_weather" and "location" in json.loads(arguments)


# ------------------------------------------------------------------------------------------ messages


@pytest.mark.parametrize("stream", [False, True])
def test_messages_caller(live_gateway, upstream, raw_key, unique_model, stream):
    api = anthropic_client(live_gateway.url, raw_key).messages
    kwargs = {"model": unique_model, "max_tokens": 256, "messages": [{"role": "user", "content": HELLO}]}
    if stream:
        with api.stream(**kwargs) as events:
            message = events.get_final_message()  # the SDK's accumulator checks the event order
    else:
        message = api.create(**kwargs)
    assert message.content[0].type == "text" and message.content[0].text.startswith("Fake reply to: Say hello")
    assert message.usage.output_tokens > 0
    assert_billed(unique_model)


@pytest.mark.parametrize("stream", [False, True])
def test_messages_caller_tools(live_gateway, upstream, raw_key, unique_model, stream):
    api = anthropic_client(live_gateway.url, raw_key).messages
    kwargs = {
        "model": unique_model,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "weather in Paris?"}],
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER["parameters"]}],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }
    if stream:
        with api.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = api.create(**kwargs)
    uses = [block for block in message.content if block.type == "tool_use"]
    assert uses and uses[0].name == "get_weather" and "location" in uses[0].input
    assert message.stop_reason == "tool_use"


def test_messages_caller_accepts_claude_code_shapes(live_gateway, upstream, raw_key, unique_model):
    """A mid-conversation system message and cache_control on system blocks must not fail."""
    api = anthropic_client(live_gateway.url, raw_key).messages
    message = api.create(
        model=unique_model,
        max_tokens=256,
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "system", "content": "Reminder: be brief."},  # type: ignore[typeddict-item]
            {"role": "user", "content": HELLO},
        ],
    )
    assert message.content[0].text


# ------------------------------------------------------------------------------------------ responses


@pytest.mark.parametrize("stream", [False, True])
def test_responses_caller(live_gateway, upstream, raw_key, unique_model, stream):
    api = client(live_gateway.url, raw_key).responses
    if stream:
        events = list(api.create(model=unique_model, input=HELLO, stream=True))
        assert events[0].type == "response.created" and events[-1].type == "response.completed"
        response = events[-1].response
    else:
        response = api.create(model=unique_model, input=HELLO)
    assert response.output_text.startswith("Fake reply to: Say hello")
    assert_billed(unique_model)


@pytest.mark.parametrize("stream", [False, True])
def test_responses_caller_tools(live_gateway, upstream, raw_key, unique_model, stream):
    api = client(live_gateway.url, raw_key).responses
    kwargs = {
        "model": unique_model,
        "input": "weather in Paris?",
        "tools": [{"type": "function", **WEATHER}],
        "tool_choice": {"type": "function", "name": "get_weather"},
    }
    if stream:
        events = list(api.create(stream=True, **kwargs))
        response = events[-1].response
    else:
        response = api.create(**kwargs)
    calls = [item for item in response.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and "location" in json.loads(calls[0].arguments)


def test_previous_response_id_works_on_every_backend(live_gateway, upstream, raw_key, unique_model):
    api = client(live_gateway.url, raw_key).responses
    first = api.create(model=unique_model, input="My name is Ada.")
    assert StoredResponse.objects.filter(pk=first.id).exists()
    second = api.create(model=unique_model, input="What is my name?", previous_response_id=first.id)
    log = ConsumeLog.objects.filter(model_name=unique_model).order_by("-id").first()
    assert second.output_text and log.prompt_tokens > ConsumeLog.objects.filter(model_name=unique_model).order_by("id").first().prompt_tokens
    assert api.retrieve(second.id).id == second.id
    items = api.input_items.list(second.id)
    assert len(items.data) >= 3  # first input, first output, second input
    api.delete(second.id)
    assert not StoredResponse.objects.filter(pk=second.id).exists()


def test_unknown_previous_response_is_404_and_store_false_keeps_nothing(live_gateway, upstream, raw_key, unique_model):
    import openai

    api = client(live_gateway.url, raw_key).responses
    with pytest.raises(openai.NotFoundError):
        api.create(model=unique_model, input="hi", previous_response_id="resp_nope")
    response = api.create(model=unique_model, input="hi", store=False)
    assert not StoredResponse.objects.filter(pk=response.id).exists()


def test_embeddings_through_gemini(live_gateway, make_channel, raw_key, unique_model):
    make_channel(unique_model, type=24)
    api = client(live_gateway.url, raw_key).embeddings
    as_base64 = api.create(model=unique_model, input=["first text", "second text"])  # the SDK asks for base64
    assert [len(d.embedding) for d in as_base64.data] == [len(as_base64.data[0].embedding)] * 2
    as_float = api.create(model=unique_model, input="first text", encoding_format="float", dimensions=8)
    assert len(as_float.data[0].embedding) == 8
    assert ConsumeLog.objects.filter(model_name=unique_model).count() == 2


TOPIC_SCHEMA = {
    "type": "object",
    "properties": {"topic": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["topic", "confidence"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("stream", [False, True])
def test_structured_output_every_caller_every_upstream(live_gateway, upstream, raw_key, unique_model, stream):
    chat = client(live_gateway.url, raw_key).chat.completions
    fmt = {"type": "json_schema", "json_schema": {"name": "topic_classification", "schema": TOPIC_SCHEMA, "strict": True}}
    ask = [{"role": "user", "content": "Classify: the sky is blue"}]
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in chat.create(model=unique_model, messages=ask, response_format=fmt, stream=True) if c.choices)
    else:
        text = chat.create(model=unique_model, messages=ask, response_format=fmt).choices[0].message.content
    assert set(json.loads(text)) >= {"topic", "confidence"}

    responses = client(live_gateway.url, raw_key).responses
    text_format = {"format": {"type": "json_schema", "name": "topic_classification", "schema": TOPIC_SCHEMA, "strict": True}}
    if stream:
        answer = list(responses.create(model=unique_model, input="Classify: the sky is blue", text=text_format, stream=True))[-1].response
    else:
        answer = responses.create(model=unique_model, input="Classify: the sky is blue", text=text_format)
    assert set(json.loads(answer.output_text)) >= {"topic", "confidence"}

    claude = anthropic_client(live_gateway.url, raw_key).messages
    kwargs = {
        "model": unique_model,
        "max_tokens": 512,
        "messages": [{"role": "user", "content": "Classify: the sky is blue"}],
        "tools": [{"name": "topic_classifier", "description": "Classify", "input_schema": TOPIC_SCHEMA}],
        "tool_choice": {"type": "tool", "name": "topic_classifier"},
    }
    if stream:
        with claude.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = claude.create(**kwargs)
    use = next(block for block in message.content if block.type == "tool_use")
    assert set(use.input) >= {"topic", "confidence"}


@pytest.mark.parametrize("upstream_type", [8, 14, 33])  # Chat, Anthropic, Bedrock
def test_builtin_tools_the_upstream_lacks_are_dropped_and_named(live_gateway, make_channel, raw_key, unique_model, upstream_type):
    from .helpers import post

    settings = {"type": upstream_type, "scenario": "notools"}
    if upstream_type == 33:
        settings.update(key="AKIAFAKE|secret|us-east-1", model_mapping={unique_model: "meta.llama-fake-v1:0"})
    make_channel(unique_model, **settings)
    body = {
        "model": unique_model,
        "input": "hi",
        "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}, {"type": "function", **WEATHER}],
    }
    status, headers, reply = post(live_gateway.url + "/v1/responses", body, {"Authorization": f"Bearer {raw_key}"})
    assert status == 200, reply
    assert "code_interpreter" in headers["x-oneapi-dropped-tools"]


@pytest.mark.parametrize("scenario", ["cut", "garbage"])
@pytest.mark.parametrize("upstream_type", [8, 14])  # a Chat and an Anthropic upstream
def test_broken_upstream_streams_end_in_the_callers_error_format(live_gateway, make_channel, raw_key, unique_model, scenario, upstream_type):
    # `slow`: the cut comes after the gateway has relayed some words. (A cut already buffered when
    # the relay starts reading surfaces at once, aiohttp raising before the data: nothing was
    # delivered, and the caller gets a plain 502, as from any upstream failing before answering.)
    make_channel(unique_model, type=upstream_type, scenario=f"{scenario},words=40" + (",slow=10" if scenario == "cut" else ""))
    claude = anthropic_client(live_gateway.url, raw_key).messages
    responses = client(live_gateway.url, raw_key).responses
    if scenario == "cut":
        with pytest.raises(anthropic.APIError, match="before the answer was complete"):
            with claude.stream(model=unique_model, max_tokens=256, messages=[{"role": "user", "content": HELLO}]) as events:
                events.get_final_message()
        events = list(responses.create(model=unique_model, input=HELLO, stream=True))
        assert events[-1].type == "error" and "before the answer was complete" in events[-1].message
        assert ConsumeLog.objects.filter(model_name=unique_model, quota__gt=0).count() == 2  # billed what was delivered
    else:
        # A garbled event either is skipped (nothing of the answer was in it) or ends the stream
        # with a clean error of the caller's format: never bytes the client's parser chokes on.
        try:
            with claude.stream(model=unique_model, max_tokens=256, messages=[{"role": "user", "content": HELLO}]) as events:
                assert events.get_final_message().content[0].text
        except anthropic.APIError as err:
            assert "upstream" in str(err)
        last = list(responses.create(model=unique_model, input=HELLO, stream=True))[-1]
        assert last.type == "response.completed" or (last.type == "error" and "upstream" in last.message)
