"""The adaptor against the fake provider's Gemini mode: both halves of the protocol agree.

The fake validates like the real API (unknown schema keywords, empty OBJECT properties,
Gemini 3's thought-signature rule), so these catch mappings Gemini would reject.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fakeprovider.process import FakeProvider, start_fake_provider
from relay import ir
from relay.adaptors.gemini.adaptor import GeminiAdaptor
from relay.snapshot import ChannelEntry
from relay.upstream import parse_error_body

ADAPTOR = GeminiAdaptor()
PYDANTIC_SCHEMA = {
    "$defs": {"Unit": {"enum": ["c", "f"], "title": "Unit", "type": "string"}},
    "additionalProperties": False,
    "properties": {
        "city": {"title": "City", "type": "string"},
        "unit": {"anyOf": [{"$ref": "#/$defs/Unit"}, {"type": "null"}], "default": None},
    },
    "required": ["city", "unit"],
    "title": "Args",
    "type": "object",
}
TOOLS = [
    ir.ToolDef(name="get_weather", description="Weather", parameters=PYDANTIC_SCHEMA, strict=True),
    ir.ToolDef(name="now", parameters={"type": "object", "properties": {}, "additionalProperties": False}),
]


@pytest.fixture(scope="module")
def fp() -> Iterator[FakeProvider]:
    with start_fake_provider() as provider:
        yield provider


def channel(fp: FakeProvider, scenario: str | None = None) -> ChannelEntry:
    return ChannelEntry(
        id=1, name="g", type=24, protocol="gemini", base_url=fp.url("", scenario), key="AIza-test",
        model_mapping={}, config={}, priority=0, weight=1, enabled=True,
    )


def post(fp: FakeProvider, request: ir.Request, model: str, *, stream: bool = False, scenario: str | None = None) -> tuple[int, bytes]:
    ch = channel(fp, scenario)
    body = json.dumps(ADAPTOR.encode_request(request, model=model, channel=ch)).encode()
    url = ADAPTOR.build_url(ch, "chat", model=model, stream=stream)
    req = urllib.request.Request(url, data=body, headers=ADAPTOR.build_headers(ch), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            try:
                return resp.status, resp.read()
            except http.client.IncompleteRead as exc:  # the "cut" scenario hangs up mid-body
                return resp.status, exc.partial
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def ask(text: str, **kw: Any) -> ir.Request:
    return ir.Request(model="x", system=[ir.TextPart("Be brief.")], messages=[ir.Message("user", [ir.TextPart(text)])], **kw)


def test_text_answer(fp: FakeProvider) -> None:
    status, raw = post(fp, ask("Hello there", max_output_tokens=100, temperature=0.1), "gemini-2.5-flash")
    assert status == 200, raw
    response = ADAPTOR.decode_response(raw)
    assert response.parts == [ir.TextPart("Fake reply to: Hello there")] and response.stop_reason == "stop"
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens == 6
    assert fp.requests()[-1]["body"]["safetySettings"][0]["threshold"] == "BLOCK_NONE"


def test_cleaned_tool_schemas_are_accepted_and_signatures_round_trip(fp: FakeProvider) -> None:
    model = "gemini-3-pro-preview"  # the fake enforces Gemini 3's signature rule
    request = ask("Weather in Paris?", tools=TOOLS, tool_choice=ir.ToolChoice("tool", "get_weather"),
                  reasoning=ir.Reasoning(effort="low"))
    status, raw = post(fp, request, model)
    assert status == 200, raw
    first = ADAPTOR.decode_response(raw)
    assert first.stop_reason == "tool_calls"
    thought, signature, call = first.parts
    assert thought.text.startswith("**Planning") and signature.signature and not signature.text
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "example", "unit": "c"}

    request.messages += [
        ir.Message("assistant", first.parts),
        ir.Message("tool", [ir.ToolResultPart(call_id=call.id, content=[ir.TextPart("18C")])]),
    ]
    status, raw = post(fp, request, model)
    assert status == 200, raw
    sent = fp.requests()[-1]["body"]["contents"]
    assert sent[1]["parts"][0]["thoughtSignature"] == signature.signature
    assert sent[2]["parts"][0]["functionResponse"] == {"name": "get_weather", "response": {"content": "18C"}}
    assert isinstance(ADAPTOR.decode_response(raw).parts[-1], ir.TextPart)


def test_foreign_history_gets_the_documented_placeholder(fp: FakeProvider) -> None:
    request = ask("What time is it?", tools=TOOLS)
    request.messages += [
        ir.Message("assistant", [ir.ToolCallPart(id="toolu_01", name="now", arguments="{}")]),
        ir.Message("tool", [ir.ToolResultPart(call_id="toolu_01", content=[ir.TextPart("noon")])]),
    ]
    status, raw = post(fp, request, "gemini-3-pro-preview")
    assert status == 200, raw


def test_stream(fp: FakeProvider) -> None:
    request = ask("Count to five please", reasoning=ir.Reasoning(budget_tokens=512))
    status, raw = post(fp, request, "gemini-2.5-flash", stream=True, scenario="cached=3")
    assert status == 200
    decoder = ADAPTOR.stream_decoder(wire="gemini", model="gemini-2.5-flash")
    events: list[ir.StreamEvent] = []
    for i in range(0, len(raw), 7):
        events += decoder.feed(raw[i:i + 7])
    events += decoder.close()
    text = "".join(e.text for e in events if isinstance(e, ir.TextDelta))
    assert text == "Fake reply to: Count to five please"
    assert any(isinstance(e, ir.ReasoningDelta) and e.signature for e in events)
    end = events[-1]
    assert isinstance(end, ir.StreamEnd) and end.stop_reason == "stop" and end.reasoning_tokens > 0
    whole = ADAPTOR.decode_response(post(fp, request, "gemini-2.5-flash", scenario="cached=3")[1])
    assert end.usage == whole.usage and end.usage.cached_tokens == 3


def test_cut_stream_is_an_error(fp: FakeProvider) -> None:
    status, raw = post(fp, ask("one two three four five six"), "gemini-2.5-flash", stream=True, scenario="cut")
    decoder = ADAPTOR.stream_decoder(wire="gemini")
    events = decoder.feed(raw) + decoder.close()
    assert status == 200 and isinstance(events[-1], ir.StreamError)


@pytest.mark.parametrize(("scenario", "code"), [("429", "429"), ("503", "503"), ("500", "500")])
def test_google_errors_are_read_by_the_relay(fp: FakeProvider, scenario: str, code: str) -> None:
    status, raw = post(fp, ask("hi"), "gemini-2.5-flash", scenario=scenario)
    message, parsed_code, kind = parse_error_body(raw, status)
    expected_kind = {"429": "RESOURCE_EXHAUSTED", "500": "INTERNAL", "503": "UNAVAILABLE"}[code]
    assert status == int(code) and parsed_code == code and message and kind == expected_kind


def test_embeddings(fp: FakeProvider) -> None:
    ch = channel(fp)
    payload = {"model": "text-embedding-004", "input": ["hello world", "bye"], "dimensions": 16, "encoding_format": "base64"}
    body = json.dumps(ADAPTOR.encode_embeddings(payload, model="text-embedding-004")).encode()
    url = ADAPTOR.build_url(ch, "embeddings", model="text-embedding-004", stream=False)
    req = urllib.request.Request(url, data=body, headers=ADAPTOR.build_headers(ch), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        out = ADAPTOR.decode_embeddings(resp.read(), model="text-embedding-004", payload=payload)
    assert [d["index"] for d in out["data"]] == [0, 1]
    assert all(isinstance(d["embedding"], str) and len(d["embedding"]) == 88 for d in out["data"])  # 16 float32
    assert out["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
