"""Vertex AI adaptor: URLs, bodies, decoding (by model and by shape), and the adaptor against the
fake's Vertex mode with real OAuth tokens."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from channels_app.types import type_info
from fakeprovider.process import FakeProvider
from relay import ir
from relay.adaptors import get_adaptor
from relay.adaptors.vertex import adaptor as vertex
from relay.adaptors.vertex.adaptor import ANTHROPIC_VERSION, SniffingStreamDecoder, VertexAdaptor
from relay.errors import UpstreamError
from relay.snapshot import ChannelEntry

from .keys import service_account_json

ADAPTOR = VertexAdaptor()
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
PREFIX = "https://us-central1-aiplatform.googleapis.com/v1/projects/test-project/locations/us-central1/publishers"


def entry(base_url: str = "", key: str | None = None, token_uri: str = GOOGLE_TOKEN_URI, channel_id: int = 42,
          **config: Any) -> ChannelEntry:
    return ChannelEntry(id=channel_id, name="vertex", type=42, protocol="vertex", base_url=base_url,
                        key=service_account_json(token_uri) if key is None else key,
                        model_mapping={}, config=config, priority=0, weight=1, enabled=True)


def url(channel: ChannelEntry, model: str, stream: bool = False) -> str:
    return ADAPTOR.build_url(channel, "chat", model=model, stream=stream, wire=ADAPTOR.upstream_format(channel, "chat"))


def hello(text: str = "Hello there Vertex", **kwargs: Any) -> ir.Request:
    return ir.Request(model="caller-model", messages=[ir.Message(role="user", parts=[ir.TextPart(text)])], **kwargs)


# ------------------------------------------------------------------------------------ registry, formats


def test_type_42_is_served_by_the_vertex_adaptor():
    assert type_info(42).protocol == "vertex"
    assert isinstance(get_adaptor("vertex"), VertexAdaptor)


def test_no_caller_format_passes_through():
    channel = entry()
    assert ADAPTOR.native_formats(channel) == frozenset()
    for caller in ("chat", "responses", "messages"):
        assert ADAPTOR.upstream_format(channel, caller) == vertex.WIRE
        assert ADAPTOR.upstream_format(channel, caller, model="claude-sonnet-4-5") == vertex.WIRE


# ------------------------------------------------------------------------------------ URLs


def test_gemini_urls():
    channel = entry()
    assert url(channel, "gemini-2.5-pro") == f"{PREFIX}/google/models/gemini-2.5-pro:generateContent"
    assert url(channel, "gemini-2.5-pro", stream=True) == f"{PREFIX}/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"


def test_claude_urls_keep_the_version_suffix():
    channel = entry()
    assert url(channel, "claude-sonnet-4-5@20250929") == f"{PREFIX}/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    assert url(channel, "claude-sonnet-4-5@20250929", stream=True).endswith(":streamRawPredict")


def test_region_project_and_hosts():
    channel = entry(region="europe-west4", vertex_ai_project_id="other")
    assert url(channel, "gemini-2.5-flash").startswith(
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/other/locations/europe-west4/publishers/google/")
    assert url(entry(region="global"), "gemini-2.5-flash").startswith(
        "https://aiplatform.googleapis.com/v1/projects/test-project/locations/global/")
    # The type's default base URL (one of Google's hosts) follows the region; a proxy does not.
    assert url(entry("https://aiplatform.googleapis.com", region="asia-east1"), "m").startswith("https://asia-east1-aiplatform")
    assert url(entry("https://proxy.example/vertex/"), "m").startswith("https://proxy.example/vertex/v1/projects/")
    assert url(entry("https://proxy.example/v1beta1"), "m").startswith("https://proxy.example/v1beta1/projects/")
    with pytest.raises(ValueError):
        url(entry(region="us-central1.evil.com/x"), "m")


def test_embeddings_are_not_served_and_missing_credentials_are_the_channels_fault():
    with pytest.raises(ValueError):
        ADAPTOR.build_url(entry(), "embeddings", model="text-embedding-005", stream=False, wire="embeddings")
    with pytest.raises(UpstreamError) as caught:
        url(entry(key="not-json"), "gemini-2.5-flash")
    assert caught.value.retryable


# ------------------------------------------------------------------------------------ bodies


def test_gemini_body_is_a_generate_content_request():
    body = ADAPTOR.encode_request(hello(system=[ir.TextPart("Be brief")]), model="gemini-2.5-flash", channel=entry())
    assert "model" not in body
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hello there Vertex"}]}]
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief"}]}
    assert {s["threshold"] for s in body["safetySettings"]} == {"BLOCK_NONE"}
    off = ADAPTOR.encode_request(hello(), model="gemini-2.5-flash", channel=entry(safety_setting="OFF"))
    assert {s["threshold"] for s in off["safetySettings"]} == {"OFF"}


def test_claude_body_has_anthropic_version_and_no_model():
    body = ADAPTOR.encode_request(hello(stream=True, max_output_tokens=50), model="claude-opus-4-1@20250805",
                                  channel=entry(anthropic_beta="context-1m-2025-08-07, other-beta"))
    assert "model" not in body
    assert body["anthropic_version"] == ANTHROPIC_VERSION
    assert body["max_tokens"] == 50 and body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello there Vertex"}]}]
    assert body["anthropic_beta"] == ["context-1m-2025-08-07", "other-beta"]


# ------------------------------------------------------------------------------------ decoding

GEMINI_ANSWER = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4},
    "modelVersion": "gemini-2.5-flash", "responseId": "r1",
}
CLAUDE_ANSWER = {
    "id": "msg_vrtx_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
GEMINI_STREAM = (
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]},"index":0}],"responseId":"r2"}\r\n\r\n'
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]},"finishReason":"STOP","index":0}],'
    b'"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5},"responseId":"r2"}\r\n\r\n'
)
CLAUDE_STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_vrtx_2","type":"message","role":"assistant",'
    b'"model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
    b'event: ping\ndata: {"type":"ping"}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


@pytest.mark.parametrize("model", ["", "gemini-2.5-flash"])
def test_decode_gemini_answer(model: str):
    answer = ADAPTOR.decode_response(json.dumps(GEMINI_ANSWER).encode(), wire=vertex.WIRE, model=model)
    assert [p.text for p in answer.parts] == ["Hi"] and answer.usage.prompt_tokens == 3


@pytest.mark.parametrize("model", ["", "claude-sonnet-4-5"])
def test_decode_claude_answer(model: str):
    answer = ADAPTOR.decode_response(CLAUDE_ANSWER, wire=vertex.WIRE, model=model)
    assert [p.text for p in answer.parts] == ["Hi"] and answer.stop_reason == "stop" and answer.id == "msg_vrtx_1"


def _text_and_end(events: list[ir.StreamEvent]) -> tuple[str, ir.StreamEnd | None]:
    text = "".join(e.text for e in events if isinstance(e, ir.TextDelta))
    ends = [e for e in events if isinstance(e, ir.StreamEnd)]
    assert not [e for e in events if isinstance(e, ir.StreamError)], events
    return text, ends[-1] if ends else None


@pytest.mark.parametrize("chunk", [1, 7, 10_000])
@pytest.mark.parametrize(("stream", "model"), [(GEMINI_STREAM, "gemini-2.5-flash"), (CLAUDE_STREAM, "claude-sonnet-4-5")])
def test_stream_decoders_by_model_and_by_shape(stream: bytes, model: str, chunk: int):
    for decoder in (ADAPTOR.stream_decoder(wire=vertex.WIRE, model=model), ADAPTOR.stream_decoder(wire=vertex.WIRE)):
        events: list[ir.StreamEvent] = []
        for i in range(0, len(stream), chunk):
            events += decoder.feed(stream[i:i + chunk])
        events += decoder.close()
        text, end = _text_and_end(events)
        assert text == "Hello" and end is not None and end.usage is not None and end.usage.completion_tokens == 2


def test_sniffing_decoder_with_everything_held_until_close():
    decoder = SniffingStreamDecoder()
    assert decoder.feed(CLAUDE_STREAM[:10]) == []  # "event: mes": no whole line yet
    events = decoder.feed(CLAUDE_STREAM[10:-1]) + decoder.close()
    text, end = _text_and_end(events)
    assert text == "Hello" and end is not None
    truncated = SniffingStreamDecoder()
    events = truncated.feed(b"data: {}") + truncated.close()  # no finishReason: an error, not a hang
    assert any(isinstance(e, ir.StreamError) for e in events)


# ------------------------------------------------------------------------------------ against the fake


def _send(channel: ChannelEntry, model: str, request: ir.Request) -> tuple[int, bytes, dict[str, str]]:
    target = url(channel, model, stream=request.stream)
    body = json.dumps(ADAPTOR.encode_request(request, model=model, wire=vertex.WIRE, channel=channel)).encode()
    headers = asyncio.run(ADAPTOR.authorize(channel, url=target, headers=ADAPTOR.build_headers(channel, wire=vertex.WIRE), body=body))
    try:
        with urllib.request.urlopen(urllib.request.Request(target, data=body, headers=headers, method="POST"), timeout=10) as r:
            return r.status, r.read(), headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), headers


@pytest.fixture
def channel(fake_provider: FakeProvider) -> ChannelEntry:
    vertex.TOKENS.clear()
    return entry(fake_provider.base_url, token_uri=fake_provider.base_url + "/token", channel_id=4242)


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "claude-sonnet-4-5@20250929"])
def test_non_stream_through_the_fake(fake_provider: FakeProvider, channel: ChannelEntry, model: str):
    status, raw, headers = _send(channel, model, hello())
    assert status == 200, raw
    assert headers["Authorization"].startswith("Bearer fake-vertex-token-")
    answer = ADAPTOR.decode_response(raw, wire=vertex.WIRE)  # read by its shape
    assert [p.text for p in answer.parts if isinstance(p, ir.TextPart)] == ["Fake reply to: Hello there Vertex"]
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "claude-haiku-4-5@20251001"])
def test_stream_through_the_fake(fake_provider: FakeProvider, channel: ChannelEntry, model: str):
    status, raw, _ = _send(channel, model, hello(stream=True, max_output_tokens=100))
    assert status == 200, raw
    decoder = ADAPTOR.stream_decoder(wire=vertex.WIRE)
    text, end = _text_and_end(decoder.feed(raw) + decoder.close())
    assert text == "Fake reply to: Hello there Vertex" and end is not None and end.stop_reason == "stop"


def test_one_token_serves_many_requests(fake_provider: FakeProvider, channel: ChannelEntry):
    fake_provider.clear()
    for model in ("gemini-2.5-flash", "claude-sonnet-4-5", "gemini-2.5-pro"):
        assert _send(channel, model, hello())[0] == 200
    assert [r["path"] for r in fake_provider.requests()].count("/token") == 1


def test_refused_credentials_become_a_retryable_upstream_error(fake_provider: FakeProvider):
    vertex.TOKENS.clear()
    bad = entry(fake_provider.base_url, token_uri=fake_provider.url("/token", "401"), channel_id=4343)
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(ADAPTOR.authorize(bad, url="x", headers={}, body=b""))
    assert caught.value.retryable and "4343" in caught.value.message


def test_tool_call_round_trip_with_claude_on_the_fake(fake_provider: FakeProvider, channel: ChannelEntry):
    tool = ir.ToolDef(name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    status, raw, _ = _send(channel, "claude-sonnet-4-5", hello("Weather in Paris?", tools=[tool]))
    assert status == 200, raw
    answer = ADAPTOR.decode_response(raw, wire=vertex.WIRE, model="claude-sonnet-4-5")
    calls = [p for p in answer.parts if isinstance(p, ir.ToolCallPart)]
    assert answer.stop_reason == "tool_calls" and calls[0].name == "get_weather" and "city" in json.loads(calls[0].arguments)
