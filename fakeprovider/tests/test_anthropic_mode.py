"""The fake provider's Anthropic mode, driven by the official ``anthropic`` SDK over real HTTP.

No Django: a real child process (``start_fake_provider``) and the SDK, as the gateway's Anthropic
adaptor will see it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fakeprovider.anthropic import count_messages_prompt_tokens, parse_anthropic_scenarios
from fakeprovider.process import FakeProvider, start_fake_provider
from fakeprovider.tests.raw import raw_post
from fakeprovider.tokens import count_tokens

anthropic = pytest.importorskip("anthropic")

HELLO = [{"role": "user", "content": "Hello there, how are you today?"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                       "days": {"type": "integer"}},
        "required": ["city"],
    },
}
TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
MODEL = "claude-fake-1"  # not a real model id: the SDK warns about deprecated ones


@pytest.fixture(scope="module")
def fp() -> Iterator[FakeProvider]:
    with start_fake_provider() as provider:
        yield provider


def client(fp: FakeProvider, scenario: str | None = None, **kw: Any) -> Any:
    kw.setdefault("timeout", 10)
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=fp.url("", scenario), max_retries=0, **kw)


def create(fp: FakeProvider, scenario: str | None = None, **body: Any) -> Any:
    body.setdefault("model", MODEL)
    body.setdefault("max_tokens", 1024)
    body.setdefault("messages", HELLO)
    return client(fp, scenario).messages.create(**body)


def post(fp: FakeProvider, body: Any, headers: dict[str, str], scenario: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(fp.url("/v1/messages", scenario), data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **headers}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def raw_http(fp: FakeProvider, path: str, body: Any) -> bytes:
    return raw_post(fp, path, body, {"x-api-key": "k", "anthropic-version": "2023-06-01"})


# ---------------------------------------------------------------------------- plain messages
def test_plain_message(fp: FakeProvider) -> None:
    msg = create(fp, system=[{"type": "text", "text": "Be nice.", "cache_control": {"type": "ephemeral"}}])
    assert msg.id.startswith("msg_fake_") and msg.type == "message" and msg.role == "assistant"
    assert msg.model == MODEL and msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "Fake reply to: Hello there, how are you today?"
    assert msg.usage.input_tokens == (3 + 3) + (3 + count_tokens(HELLO[0]["content"]))
    assert msg.usage.output_tokens == count_tokens(msg.content[0].text)
    assert msg.usage.cache_read_input_tokens == 0 and msg.usage.cache_creation_input_tokens == 0
    record = fp.requests()[-1]
    assert record["path"] == "/v1/messages" and record["headers"]["authorization"] == "Bearer sk-ant-test"
    assert record["headers"]["anthropic-version"]


def test_stream_matches_non_stream_and_event_order(fp: FakeProvider) -> None:
    plain = create(fp)
    with client(fp).messages.stream(model=MODEL, max_tokens=1024, messages=HELLO) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == plain.content[0].text and final.stop_reason == "end_turn"
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.usage.output_tokens == plain.usage.output_tokens
    raw = raw_http(fp, "/v1/messages", {"model": MODEL, "max_tokens": 1024, "messages": HELLO, "stream": True})
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert b"text/event-stream" in head
    events = [line[7:] for line in payload.decode().split("\n") if line.startswith("event: ")]
    assert events[:3] == ["message_start", "content_block_start", "ping"]  # the SDK hides pings
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(events[3:-3]) == {"content_block_delta"}


def test_words_max_tokens_stop_sequences_and_images(fp: FakeProvider) -> None:
    msg = create(fp, scenario="words=40")
    assert len(msg.content[0].text.split()) == 40
    msg = create(fp, max_tokens=3)
    assert msg.stop_reason == "max_tokens" and msg.content[0].text == "Fake reply"
    msg = create(fp, stop_sequences=["how"])
    assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == "how"
    assert msg.content[0].text == "Fake reply to: Hello there, "
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    msg = create(fp, messages=[{"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]}])
    assert msg.content[0].text == "Fake reply to: (saw 1 image(s)) What is it?"
    assert msg.usage.input_tokens == 3 + 85 + count_tokens("What is it?")


def test_cached_scenario(fp: FakeProvider) -> None:
    total = create(fp).usage.input_tokens
    msg = create(fp, scenario="cached=5")
    assert msg.usage.cache_read_input_tokens == 5 and msg.usage.input_tokens == total - 5
    msg = create(fp, scenario="cached=100000")
    assert msg.usage.cache_read_input_tokens == total and msg.usage.input_tokens == 0


# ---------------------------------------------------------------------------- tools and thinking
def test_tool_use(fp: FakeProvider) -> None:
    msg = create(fp, tools=[WEATHER, TIME])
    assert msg.stop_reason == "tool_use" and [b.type for b in msg.content] == ["tool_use"]
    call = msg.content[0]
    assert (call.id, call.name, call.input) == ("toolu_fake_0", "get_weather",
                                               {"city": "example", "unit": "celsius", "days": 1})
    assert msg.usage.output_tokens == count_tokens("get_weather") + count_tokens(
        json.dumps(call.input, separators=(",", ":")))
    assert [b.name for b in create(fp, tools=[WEATHER, TIME], tool_choice={"type": "any"}).content] == [
        "get_weather", "get_time"]
    single = create(fp, tools=[WEATHER, TIME], tool_choice={"type": "any", "disable_parallel_tool_use": True})
    assert [b.name for b in single.content] == ["get_weather"]
    assert create(fp, tools=[WEATHER, TIME], tool_choice={"type": "tool", "name": "get_time"}).content[0].input == {}
    assert create(fp, tools=[WEATHER], tool_choice={"type": "none"}).content[0].type == "text"
    server_only = create(fp, tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert server_only.content[0].type == "text"

    result = {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}
    history = HELLO + [{"role": "assistant", "content": msg.content}, {"role": "user", "content": [result]}]
    after = create(fp, tools=[WEATHER], messages=history)
    assert after.stop_reason == "end_turn" and after.content[0].text.startswith("Fake reply to: Hello")

    with client(fp).messages.stream(model=MODEL, max_tokens=1024, messages=HELLO, tools=[WEATHER]) as stream:
        final = stream.get_final_message()
    assert final.content[0].input == call.input and final.stop_reason == "tool_use"


def test_thinking(fp: FakeProvider) -> None:
    msg = create(fp, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048})
    thinking, text = msg.content
    assert thinking.type == "thinking" and thinking.thinking == "Fake thinking about: Hello there, how are you today?"
    assert thinking.signature and text.text.startswith("Fake reply")
    assert msg.usage.output_tokens == count_tokens(thinking.thinking) + count_tokens(text.text)
    with client(fp).messages.stream(model=MODEL, max_tokens=4096, messages=HELLO,
                                    thinking={"type": "adaptive"}, tools=[WEATHER]) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert "signature" in events and "thinking" in events
    assert [b.type for b in final.content] == ["thinking", "tool_use"]
    assert final.content[0].signature == thinking.signature
    # The signed thinking goes back with the tool result; the next answer is text.
    history = HELLO + [{"role": "assistant", "content": final.content}, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": final.content[1].id, "content": "ok"}]}]
    assert create(fp, max_tokens=4096, messages=history, tools=[WEATHER], thinking={"type": "adaptive"}
                  ).content[1].type == "text"


@pytest.mark.parametrize(("body", "needle"), [
    ({"max_tokens": None}, "max_tokens"),
    ({"messages": []}, "at least one message"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}, 'role "system"'),
    ({"messages": [{"role": "user", "content": ""}]}, "non-empty content"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}, "must be non-empty"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": "r"}]}]},
     "unexpected `tool_use_id`"),
    ({"messages": HELLO + [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t1", "name": "get_time", "input": {}}]},
        {"role": "user", "content": "no result"}]}, "without `tool_result`"),
    ({"tools": [{"name": "f"}]}, "input_schema"),
    ({"temperature": 1.5}, "temperature"),
    ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "greater than or equal to 1024"),
    ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "greater than `thinking.budget_tokens`"),
    ({"max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 2048}, "temperature": 0.5},
     "temperature"),
    ({"max_tokens": 4096, "thinking": {"type": "adaptive"}, "tools": [TIME], "tool_choice": {"type": "any"}},
     "tool_choice forces tool use"),
    ({"tools": [TIME], "tool_choice": {"type": "tool", "name": "nope"}}, "nope"),
])
def test_validation_errors(fp: FakeProvider, body: dict[str, Any], needle: str) -> None:
    full = {"model": MODEL, "max_tokens": 1024, "messages": HELLO, **body}
    required = {k: full.pop(k) for k in ("model", "max_tokens", "messages")}
    # extra_body: the SDK 2.x has no temperature argument and checks required ones itself.
    required = {k: v if v is not None else anthropic.omit for k, v in required.items()}
    with pytest.raises(anthropic.BadRequestError) as info:
        client(fp).messages.create(**required, extra_body=full)
    assert info.value.status_code == 400
    error = info.value.body["error"]
    assert error["type"] == "invalid_request_error" and needle in error["message"]
    assert info.value.body["type"] == "error" and info.value.request_id.startswith("req_fake_")


# ---------------------------------------------------------------------------- auth and scenarios
def test_auth_and_version_headers(fp: FakeProvider) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": HELLO}
    status, err = post(fp, body, {"anthropic-version": "2023-06-01"})
    assert status == 401 and err["type"] == "error" and err["error"]["type"] == "authentication_error"
    status, err = post(fp, body, {"Authorization": "Basic abc", "anthropic-version": "2023-06-01"})
    assert status == 401 and err["error"]["message"] == "x-api-key header is required"
    status, _ = post(fp, body, {"Authorization": "Bearer sk-ant", "anthropic-version": "2023-06-01"})
    assert status == 200  # the SDK 2.x way
    status, err = post(fp, body, {"x-api-key": "k"})
    assert status == 400 and err["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in err["error"]["message"]
    status, ok = post(fp, body, {"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert status == 200 and ok["type"] == "message"
    status, err = post(fp, body, {"x-api-key": "k", "anthropic-version": "2023-06-01"}, scenario="nonsense")
    assert status == 400 and "nonsense" in err["error"]["message"]


@pytest.mark.parametrize(("scenario", "exc", "type_"), [
    ("429", "RateLimitError", "rate_limit_error"),
    ("500", "InternalServerError", "api_error"),
    ("529", "OverloadedError", "overloaded_error"),
    ("401", "AuthenticationError", "authentication_error"),
    ("529,429", "OverloadedError", "overloaded_error"),  # the first error item wins
    ("words=3,429,529", "RateLimitError", "rate_limit_error"),
])
def test_error_scenarios(fp: FakeProvider, scenario: str, exc: str, type_: str) -> None:
    with pytest.raises(getattr(anthropic, exc)) as info:
        create(fp, scenario=scenario)
    message = info.value.body["error"]["message"]
    assert info.value.body == {"type": "error", "error": {"type": type_, "message": message},
                               "request_id": info.value.request_id}
    if type_ == "rate_limit_error":
        assert info.value.response.headers["retry-after"] == "1"


def test_parse_anthropic_scenarios() -> None:
    assert parse_anthropic_scenarios("529,cached=3").error == 529
    assert parse_anthropic_scenarios("cached=3").cached == 3 and parse_anthropic_scenarios("cached=3").error is None


def test_timeout_slow_cut_garbage(fp: FakeProvider) -> None:
    with pytest.raises(anthropic.APITimeoutError):
        client(fp, "timeout=3", timeout=0.5).messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    start = time.monotonic()
    with client(fp, "slow=30").messages.stream(model=MODEL, max_tokens=1024, messages=HELLO) as stream:
        assert stream.get_final_message().content[0].text.startswith("Fake reply")
    assert time.monotonic() - start >= 0.3  # ~15 events, 30 ms apart

    body = {"model": MODEL, "max_tokens": 1024, "messages": HELLO, "stream": True}
    cut = raw_http(fp, "/s/cut/v1/messages", body)
    assert b"event: message_start" in cut and b"message_stop" not in cut
    whole = raw_http(fp, "/v1/messages", {**body, "stream": False})
    half = raw_http(fp, "/s/cut/v1/messages", {**body, "stream": False})
    assert len(half.split(b"\r\n\r\n", 1)[1]) < len(whole.split(b"\r\n\r\n", 1)[1])
    with pytest.raises(anthropic.APIConnectionError):
        create(fp, scenario="cut")
    garbage = raw_http(fp, "/s/garbage/v1/messages", body)
    assert b"data: {not json" in garbage and b"event: message_stop" in garbage


def test_prompt_token_formula(fp: FakeProvider) -> None:
    body = {
        "model": MODEL, "max_tokens": 1024, "tools": [WEATHER, {**TIME, "cache_control": {"type": "ephemeral"}}],
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"},
                                         {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                                                         "data": "doc"}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "Use the tool.", "signature": "s"},
                                              {"type": "tool_use", "id": "t1", "name": "get_weather",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                          "content": [{"type": "text", "text": "Sunny, 21 C"}]}]},
        ],
    }
    expected = (
        (3 + count_tokens("You are terse."))
        + (3 + count_tokens("Weather in Paris?") + 85)
        + (3 + count_tokens("Use the tool.") + count_tokens("get_weather") + count_tokens('{"city":"Paris"}'))
        + (3 + count_tokens("Sunny, 21 C"))
        + count_tokens(json.dumps(WEATHER, separators=(",", ":")))
        + count_tokens(json.dumps(TIME, separators=(",", ":")))
    )
    assert count_messages_prompt_tokens(body) == expected
    assert client(fp).messages.create(**body).usage.input_tokens == expected
