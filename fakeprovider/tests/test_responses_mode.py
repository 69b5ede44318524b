"""The fake provider's OpenAI Responses mode, driven by the official ``openai`` SDK against the
real child process (no Django)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fakeprovider.process import FakeProvider, start_fake_provider
from fakeprovider.responses import count_responses_prompt_tokens
from fakeprovider.tokens import count_chat_prompt_tokens, count_tokens

openai = pytest.importorskip("openai")

WEATHER = {
    "type": "function", "name": "get_weather", "description": "Weather for a city", "strict": False,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]},
}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture(scope="module")
def fp() -> Iterator[FakeProvider]:
    with start_fake_provider() as provider:
        yield provider


def client(fp: FakeProvider, scenario: str | None = None, **kwargs: Any) -> Any:
    return openai.OpenAI(base_url=fp.url("/v1", scenario), api_key="sk-test", max_retries=0, **kwargs)


def post(fp: FakeProvider, body: Any, scenario: str | None = None, headers: dict[str, str] | None = None,
         ) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"} if headers is None else headers
    req = urllib.request.Request(fp.url("/v1/responses", scenario), data=data, headers=hdrs, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def frames(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            name, data = block.split("\n")
            out.append((name[len("event: "):], json.loads(data[len("data: "):])))
    return out


# ---------------------------------------------------------------------------- plain text


def test_text_reply_and_usage(fp: FakeProvider) -> None:
    resp = client(fp).responses.create(model="gpt-4o-mini", input="Hello there, how are you today?",
                                       instructions="Be brief.", metadata={"k": "v"}, temperature=0.5)
    assert resp.id.startswith("resp_fake_") and resp.object == "response" and resp.status == "completed"
    assert resp.output_text == "Fake reply to: Hello there, how are you today?"
    assert resp.instructions == "Be brief." and resp.metadata == {"k": "v"} and resp.temperature == 0.5
    expected = count_chat_prompt_tokens([{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Hello there, how are you today?"}])
    assert resp.usage is not None
    assert resp.usage.input_tokens == expected
    assert resp.usage.output_tokens == count_tokens(resp.output_text)
    assert resp.usage.total_tokens == expected + resp.usage.output_tokens
    assert resp.output[0].id.startswith("msg_") and resp.output[0].status == "completed"


def test_prompt_tokens_match_chat_for_a_plain_request() -> None:
    assert count_responses_prompt_tokens({"input": "Hi"}) == count_chat_prompt_tokens([{"role": "user", "content": "Hi"}])
    body = {"input": [{"role": "user", "content": [{"type": "input_text", "text": "see"},
                                                   {"type": "input_image", "image_url": "https://x/y.png"}]}],
            "tools": [WEATHER]}
    chat_tools = [{"function": {k: v for k, v in WEATHER.items() if k != "type"}}]
    assert count_responses_prompt_tokens(body) == count_chat_prompt_tokens(
        [{"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "image_url"}]}], chat_tools)


def test_cached_and_words_scenarios(fp: FakeProvider) -> None:
    resp = client(fp, "cached=4,words=30").responses.create(model="m", input="one two three")
    assert resp.usage is not None and resp.usage.input_tokens_details.cached_tokens == 4
    assert len(resp.output_text.split()) == 30


def test_stream_event_sequence(fp: FakeProvider) -> None:
    stream = client(fp).responses.create(model="gpt-4o-mini", input="Hello there", stream=True)
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert "".join(e.delta for e in deltas) == "Fake reply to: Hello there" and len(deltas) == 5
    final = events[-1].response
    assert final.status == "completed" and final.output_text == "Fake reply to: Hello there"
    assert final.usage.output_tokens == count_tokens("Fake reply to: Hello there")
    assert events[0].response.status == "in_progress" and events[0].response.output == []


def test_stream_helper_accumulates(fp: FakeProvider) -> None:
    with client(fp).responses.stream(model="m", input="stream me", tools=[WEATHER]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output[0].type == "function_call" and json.loads(final.output[0].arguments)["city"] == "example"


def test_obfuscation_field_can_be_turned_off(fp: FakeProvider) -> None:
    _, raw = post(fp, {"model": "m", "input": "hi", "stream": True})
    assert all("obfuscation" in d for n, d in frames(raw) if n.endswith(".delta"))
    _, raw = post(fp, {"model": "m", "input": "hi", "stream": True, "stream_options": {"include_obfuscation": False}})
    assert not any("obfuscation" in d for _, d in frames(raw))


# ---------------------------------------------------------------------------- tools


def test_function_calls(fp: FakeProvider) -> None:
    c = client(fp)
    resp = c.responses.create(model="m", input="weather in Paris?", tools=[WEATHER, TIME])
    (call,) = resp.output
    assert call.type == "function_call" and call.call_id == "call_fake_0" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "example", "days": 1} and call.id.startswith("fc_")
    assert resp.usage is not None and resp.usage.output_tokens == count_tokens("get_weather") + count_tokens(call.arguments)

    both = c.responses.create(model="m", input="x", tools=[WEATHER, TIME], tool_choice="required")
    assert [o.name for o in both.output] == ["get_weather", "get_time"]
    serial = c.responses.create(model="m", input="x", tools=[WEATHER, TIME], tool_choice="required",
                                parallel_tool_calls=False)
    assert len(serial.output) == 1
    named = c.responses.create(model="m", input="x", tools=[WEATHER, TIME],
                               tool_choice={"type": "function", "name": "get_time"})
    assert [o.name for o in named.output] == ["get_time"]
    assert c.responses.create(model="m", input="x", tools=[WEATHER], tool_choice="none").output[0].type == "message"

    follow = c.responses.create(model="m", tools=[WEATHER], input=[
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ])
    assert follow.output_text == "Fake reply to: weather in Paris?"


def test_function_call_stream_and_namespace(fp: FakeProvider) -> None:
    crm = {"type": "namespace", "name": "crm", "description": "CRM tools",
           "tools": [{"type": "function", "name": "lookup", "parameters": {
               "type": "object", "properties": {"id": {"type": "integer"}}}}]}
    _, raw = post(fp, {"model": "m", "input": "find", "tools": [crm], "stream": True})
    events = frames(raw)
    added = events[2][1]["item"]
    assert added["type"] == "function_call" and added["namespace"] == "crm" and added["arguments"] == ""
    deltas = "".join(d["delta"] for n, d in events if n == "response.function_call_arguments.delta")
    assert deltas == '{"id":1}'
    done = [d for n, d in events if n == "response.function_call_arguments.done"]
    assert done[0]["arguments"] == deltas
    assert events[-1][0] == "response.completed"
    assert events[-1][1]["response"]["output"][0]["namespace"] == "crm"


def test_structured_output_with_sdk_parse(fp: FakeProvider) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Weather(pydantic.BaseModel):
        city: str
        degrees: float
        rain: bool

    parsed = client(fp).responses.parse(model="m", input="weather", text_format=Weather)
    assert parsed.output_parsed == Weather(city="example", degrees=0.5, rain=True)
    resp = client(fp).responses.create(model="m", input="a b", text={"format": {"type": "json_object"}})
    assert json.loads(resp.output_text) == {"result": "Fake reply to: a b"}


# ---------------------------------------------------------------------------- reasoning


def test_reasoning_item_with_encrypted_content(fp: FakeProvider) -> None:
    c = client(fp)
    resp = c.responses.create(model="m", input="think about cats", store=False,
                              reasoning={"effort": "low", "summary": "auto"}, include=["reasoning.encrypted_content"])
    reasoning, message = resp.output
    text = "Fake reasoning about: think about cats"
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == text
    assert reasoning.encrypted_content == "fake-enc:" + base64.b64encode(text.encode()).decode()
    assert resp.usage is not None and resp.usage.output_tokens_details.reasoning_tokens == count_tokens(text)
    assert resp.usage.output_tokens == count_tokens(text) + count_tokens(message.content[0].text)

    # Without include: the item, without encrypted content; without summary: an empty summary.
    plain = c.responses.create(model="m", input="x", reasoning={"effort": "low"})
    assert plain.output[0].encrypted_content is None and plain.output[0].summary == []

    # The item is accepted back (Codex replays it with store=false) ...
    replay = [{"role": "user", "content": "think about cats"}, reasoning.model_dump(exclude_none=True),
              {"role": "assistant", "content": message.content[0].text}, {"role": "user", "content": "and dogs?"}]
    again = c.responses.create(model="m", input=replay, store=False)
    assert again.output_text == "Fake reply to: and dogs?"
    # ... but content OpenAI did not issue (e.g. an Anthropic signature) is rejected.
    replay[1] = {**replay[1], "encrypted_content": "EqQBCkYIBxgCKkD"}
    with pytest.raises(openai.BadRequestError):
        c.responses.create(model="m", input=replay, store=False)


def test_reasoning_stream_events(fp: FakeProvider) -> None:
    _, raw = post(fp, {"model": "m", "input": "hi", "stream": True, "reasoning": {"summary": "detailed"},
                       "include": ["reasoning.encrypted_content"]})
    kinds = [n for n, _ in frames(raw)]
    assert kinds[2:5] == ["response.output_item.added", "response.reasoning_summary_part.added",
                          "response.reasoning_summary_text.delta"]
    done = [d for n, d in frames(raw) if n == "response.output_item.done"][0]["item"]
    assert done["type"] == "reasoning" and done["encrypted_content"].startswith("fake-enc:")


# ---------------------------------------------------------------------------- limits and errors


def test_max_output_tokens_makes_it_incomplete(fp: FakeProvider) -> None:
    resp = client(fp, "words=40").responses.create(model="m", input="a b c", max_output_tokens=16)
    assert resp.status == "incomplete" and resp.incomplete_details is not None
    assert resp.incomplete_details.reason == "max_output_tokens"
    assert resp.usage is not None and resp.usage.output_tokens <= 16
    _, raw = post(fp, {"model": "m", "input": "a b c", "max_output_tokens": 16, "stream": True}, "words=40")
    assert frames(raw)[-1][0] == "response.incomplete"


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x"}, "model"),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": 5}, "input"),
    ({"model": "m", "input": "x", "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools[0].name"),
    ({"model": "m", "input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]},
     "input[0].content[0].type"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
     "input[0].content[0].type"),
    ({"model": "m", "input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]}, "input"),
    ({"model": "m", "input": "x", "max_output_tokens": 5}, "max_output_tokens"),
    ({"model": "m", "input": "x", "include": ["everything"]}, "include[0]"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
    ({"model": "m", "input": "x", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "zzz"}},
     "tool_choice"),
    ({"model": "m", "input": "x", "temperature": 3}, "temperature"),
])
def test_bad_requests(fp: FakeProvider, body: dict[str, Any], param: str) -> None:
    status, raw = post(fp, body)
    error = json.loads(raw)["error"]
    assert status == 400 and error["type"] == "invalid_request_error" and error["param"] == param


def test_auth_and_forced_errors(fp: FakeProvider) -> None:
    status, raw = post(fp, {"model": "m", "input": "x"}, headers={"Content-Type": "application/json"})
    assert status == 401 and json.loads(raw)["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.RateLimitError):
        client(fp, "429").responses.create(model="m", input="x")
    with pytest.raises(openai.InternalServerError):
        client(fp, "500").responses.create(model="m", input="x")
    with pytest.raises(openai.APITimeoutError):
        client(fp, "timeout=3", timeout=0.5).responses.create(model="m", input="x")
    status, _ = post(fp, b"{not json")
    assert status == 400


def test_cut_slow_and_garbage(fp: FakeProvider) -> None:
    _, raw = post(fp, {"model": "m", "input": "a b c d e f", "stream": True}, "slow=5")
    assert frames(raw)[-1][0] == "response.completed"
    with pytest.raises(Exception):  # noqa: B017 - a truncated body: the client library reports it its own way
        post(fp, {"model": "m", "input": "a b c d e f", "stream": True}, "cut")
    with pytest.raises(Exception):  # noqa: B017
        post(fp, {"model": "m", "input": "x"}, "cut")
    _, raw = post(fp, {"model": "m", "input": "a b c d e f", "stream": True}, "garbage")
    assert b"data: {not json\n\n" in raw and raw.rstrip().endswith(b"}")


def test_cut_stream_has_no_completion(fp: FakeProvider) -> None:
    stream = client(fp, "cut").responses.create(model="m", input="a b c d e f g h", stream=True)
    seen: list[str] = []
    with pytest.raises(Exception):  # noqa: B017 - httpx reports the dropped connection
        for event in stream:
            seen.append(event.type)
    assert seen[:2] == ["response.created", "response.in_progress"] and "response.completed" not in seen


def test_requests_are_recorded(fp: FakeProvider) -> None:
    client(fp).responses.create(model="recorded-model", input="x")
    last = fp.requests()[-1]
    assert last["path"] == "/v1/responses" and last["body"]["model"] == "recorded-model"
