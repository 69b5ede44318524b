"""The adaptor against the fake provider's Bedrock mode over real HTTP: both halves agree.

The fake validates like Bedrock where it matters (no `model`/`stream` in a Claude body,
`anthropic_version`, blank text blocks, toolConfig required by tool blocks, a well-formed
SigV4 Authorization header), so these catch bodies Bedrock would reject.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fakeprovider.process import FakeProvider, start_fake_provider
from fakeprovider.tokens import count_chat_prompt_tokens
from relay import ir
from relay.adaptors.bedrock.adaptor import BedrockAdaptor
from relay.snapshot import ChannelEntry
from relay.upstream import parse_error_body

ADAPTOR = BedrockAdaptor()
CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
NOVA = "amazon.nova-pro-v1:0"
WEATHER = ir.ToolDef(name="get_weather", description="Weather for a city",
                     parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture(scope="module")
def fp() -> Iterator[FakeProvider]:
    with start_fake_provider() as provider:
        yield provider


def channel(fp: FakeProvider, scenario: str | None = None) -> ChannelEntry:
    return ChannelEntry(id=1, name="b", type=33, protocol="bedrock", base_url=fp.url("", scenario),
                        key="AKIDEXAMPLE|secret|us-east-1", model_mapping={}, config={}, priority=0, weight=1, enabled=True)


def post(fp: FakeProvider, request: ir.Request, model: str, *, stream: bool = False,
         scenario: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """What the relay does: upstream_format, encode, build_url, build_headers, authorize, POST."""
    ch = channel(fp, scenario)
    wire = ADAPTOR.upstream_format(ch, "chat", model=model)
    body = json.dumps(ADAPTOR.encode_request(request, model=model, wire=wire, channel=ch)).encode()
    url = ADAPTOR.build_url(ch, "chat", model=model, stream=stream, wire=wire)
    headers = asyncio.run(ADAPTOR.authorize(ch, url=url, headers=ADAPTOR.build_headers(ch, wire=wire), body=body))
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            try:
                return resp.status, dict(resp.headers), resp.read()
            except http.client.IncompleteRead as exc:  # the "cut" scenario hangs up mid-body
                return resp.status, dict(resp.headers), exc.partial
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def decode_stream(raw: bytes) -> list[ir.StreamEvent]:
    decoder = ADAPTOR.stream_decoder(wire="bedrock")
    events: list[ir.StreamEvent] = []
    for i in range(0, len(raw), 7):  # odd-sized pieces, frames split anywhere
        events += decoder.feed(raw[i : i + 7])
    return events + decoder.close()


def text_of(events: list[ir.StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, ir.TextDelta))


def ask(text: str, **kw: Any) -> ir.Request:
    return ir.Request(model="x", system=[ir.TextPart("Be brief.")], messages=[ir.Message("user", [ir.TextPart(text)])], **kw)


# The fake counts the request viewed as chat messages (fakeprovider.bedrock's docstring).
PROMPT = count_chat_prompt_tokens([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}])


@pytest.mark.parametrize("model", [CLAUDE, NOVA])
def test_text_answer(fp: FakeProvider, model: str) -> None:
    status, _, raw = post(fp, ask("Hello there", max_output_tokens=100), model)
    assert status == 200, raw
    answer = ADAPTOR.decode_response(json.loads(raw), wire=ADAPTOR.upstream_format(channel(fp), "chat", model=model), model=model)
    assert answer.parts == [ir.TextPart("Fake reply to: Hello there")] and answer.stop_reason == "stop"
    assert answer.usage == ir.Usage(prompt_tokens=PROMPT, completion_tokens=6)
    recorded = fp.requests()[-1]
    assert recorded["path"].endswith("/invoke" if model == CLAUDE else "/converse")
    assert recorded["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")


@pytest.mark.parametrize("model", [CLAUDE, NOVA])
def test_stream_answer_with_cache_reads(fp: FakeProvider, model: str) -> None:
    status, headers, raw = post(fp, ask("Hello there", max_output_tokens=100), model, stream=True, scenario="cached=2")
    assert status == 200, raw
    assert headers["Content-Type"] == "application/vnd.amazon.eventstream"
    events = decode_stream(raw)
    assert isinstance(events[0], ir.StreamStart)
    assert text_of(events) == "Fake reply to: Hello there"
    assert events[-1] == ir.StreamEnd(stop_reason="stop", usage=ir.Usage(prompt_tokens=PROMPT, completion_tokens=6, cached_tokens=2))


@pytest.mark.parametrize("model", [CLAUDE, NOVA])
def test_tool_use_round_trip(fp: FakeProvider, model: str) -> None:
    request = ask("Weather in Paris?", tools=[WEATHER], tool_choice=ir.ToolChoice("required"), max_output_tokens=200)
    wire = ADAPTOR.upstream_format(channel(fp), "chat", model=model)
    status, _, raw = post(fp, request, model)
    assert status == 200, raw
    first = ADAPTOR.decode_response(json.loads(raw), wire=wire)
    assert first.stop_reason == "tool_calls"
    (call,) = first.parts
    assert isinstance(call, ir.ToolCallPart) and call.name == "get_weather" and json.loads(call.arguments) == {"city": "example"}
    request.messages += [
        ir.Message("assistant", first.parts),
        ir.Message("tool", [ir.ToolResultPart(call_id=call.id, content=[ir.TextPart("18C and sunny")])]),
    ]
    request.tool_choice = None
    status, _, raw = post(fp, request, model, stream=True)
    assert status == 200, raw
    events = decode_stream(raw)
    assert text_of(events).startswith("Fake reply to:") and events[-1].stop_reason == "stop"  # type: ignore[union-attr]


@pytest.mark.parametrize("model", [CLAUDE, NOVA])
def test_structured_output(fp: FakeProvider, model: str) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}}}
    request = ask("Weather as JSON", response_format=ir.ResponseFormat(type="json_schema", name="weather", schema=schema))
    wire = ADAPTOR.upstream_format(channel(fp), "chat", model=model)
    status, _, raw = post(fp, request, model)
    assert status == 200, raw
    answer = ADAPTOR.decode_response(json.loads(raw), wire=wire)
    assert answer.stop_reason == "stop"
    assert [json.loads(p.text) for p in answer.parts if isinstance(p, ir.TextPart)] == [{"city": "example", "celsius": 0.5}]
    status, _, raw = post(fp, request, model, stream=True)
    events = decode_stream(raw)
    assert json.loads(text_of(events)) == {"city": "example", "celsius": 0.5}
    assert events[-1].stop_reason == "stop"  # type: ignore[union-attr]


def test_claude_thinking_signature_round_trip(fp: FakeProvider) -> None:
    request = ask("What is six times seven", reasoning=ir.Reasoning(enabled=True, budget_tokens=2048), max_output_tokens=4096)
    status, _, raw = post(fp, request, CLAUDE)
    assert status == 200, raw
    answer = ADAPTOR.decode_response(json.loads(raw), wire="bedrock-claude")
    thought, text = answer.parts
    assert isinstance(thought, ir.ReasoningPart) and thought.signature and thought.text.startswith("Planning")
    request.messages += [ir.Message("assistant", answer.parts), ir.Message("user", [ir.TextPart("thanks")])]
    status, _, raw = post(fp, request, CLAUDE, stream=True)
    assert status == 200, raw
    sent = fp.requests()[-1]["body"]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["messages"][1]["content"][0] == {"type": "thinking", "thinking": thought.text, "signature": thought.signature}
    events = decode_stream(raw)
    assert any(isinstance(e, ir.ReasoningDelta) and e.signature for e in events)


def test_images_go_inline(fp: FakeProvider) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    request = ir.Request(model="x", messages=[ir.Message("user", [ir.TextPart("What is it"), ir.ImagePart(data=png, media_type="image/png")])])
    for model in (CLAUDE, NOVA):
        status, _, raw = post(fp, request, model)
        assert status == 200, raw
        assert b"(saw 1 image(s))" in raw


@pytest.mark.parametrize(("scenario", "status", "kind"), [
    ("429", 429, "ThrottlingException"), ("500", 500, "InternalServerException"),
    ("401", 403, "UnrecognizedClientException"),
])
def test_forced_errors(fp: FakeProvider, scenario: str, status: int, kind: str) -> None:
    got, headers, raw = post(fp, ask("hi"), NOVA, scenario=scenario)
    assert got == status
    assert headers["x-amzn-ErrorType"].startswith(kind + ":")
    assert set(json.loads(raw)) == {"message"}


def test_error_message_reaches_the_caller(fp: FakeProvider) -> None:
    _, _, raw = post(fp, ask("hi"), NOVA, scenario="429")
    message, _, _ = parse_error_body(raw, 429)
    assert "Too many requests" in message


def test_corrupt_and_cut_streams_are_errors(fp: FakeProvider) -> None:
    for model in (CLAUDE, NOVA):
        _, _, raw = post(fp, ask("Hello there"), model, stream=True, scenario="garbage")
        events = decode_stream(raw)
        assert isinstance(events[-1], ir.StreamError) and "checksum" in events[-1].message
        _, _, raw = post(fp, ask("Hello there", max_output_tokens=50), model, stream=True, scenario="cut,words=40")
        events = decode_stream(raw)
        assert isinstance(events[-1], ir.StreamError)
        assert not any(isinstance(e, ir.StreamEnd) for e in events)
