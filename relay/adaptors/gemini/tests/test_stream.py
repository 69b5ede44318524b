"""streamGenerateContent?alt=sse decoding: recorded streams fed whole and byte by byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay import ir
from relay.adaptors.gemini.adaptor import GeminiAdaptor
from relay.adaptors.gemini.stream import GeminiStreamDecoder

FIXTURES = Path(__file__).parent / "fixtures"


def decode(data: bytes, *, byte_by_byte: bool = False, model: str = "") -> list[ir.StreamEvent]:
    decoder = GeminiStreamDecoder(model)
    events: list[ir.StreamEvent] = []
    if byte_by_byte:
        for i in range(len(data)):
            events += decoder.feed(data[i:i + 1])
    else:
        events += decoder.feed(data)
    return events + decoder.close()


def both_ways(name: str) -> list[ir.StreamEvent]:
    data = (FIXTURES / name).read_bytes()
    whole, split = decode(data), decode(data, byte_by_byte=True)
    for event in whole + split:
        if isinstance(event, ir.StreamStart):
            event.created = 0
    assert whole == split
    return whole


def test_text_stream() -> None:
    events = both_ways("stream_text.sse")
    assert events == [
        ir.StreamStart(id="stream-1", model="gemini-2.5-flash", usage=ir.Usage(prompt_tokens=8)),
        ir.PartStart(0, "text"),
        ir.TextDelta(0, "The"),
        ir.TextDelta(0, " quick brown fox"),
        ir.TextDelta(0, " jumps."),
        ir.PartStop(0),
        ir.StreamEnd(stop_reason="stop", usage=ir.Usage(prompt_tokens=8, completion_tokens=6, cached_tokens=4)),
    ]


def test_thinking_and_tool_calls_stream() -> None:
    events = both_ways("stream_thinking_tools.sse")
    assert events == [
        ir.StreamStart(id="stream-2", model="gemini-2.5-pro", usage=ir.Usage(prompt_tokens=50)),
        ir.PartStart(0, "reasoning"),
        ir.ReasoningDelta(0, text="**Planning**\nI need the weather."),
        ir.ReasoningDelta(0, text=" Then answer."),
        ir.PartStop(0),
        ir.PartStart(1, "text"),
        ir.TextDelta(1, "Let me check."),
        ir.PartStop(1),
        ir.PartStart(2, "reasoning"),
        ir.ReasoningDelta(2, signature="CiQBstreamSig"),
        ir.PartStop(2),
        ir.PartStart(3, "tool_call", tool_call_id="call_stream2_0", tool_name="get_weather"),
        ir.ToolArgsDelta(3, '{"location":"Paris"}'),
        ir.PartStop(3),
        ir.PartStart(4, "tool_call", tool_call_id="call_stream2_1", tool_name="get_time"),
        ir.ToolArgsDelta(4, "{}"),
        ir.PartStop(4),
        ir.StreamEnd(stop_reason="tool_calls", usage=ir.Usage(prompt_tokens=50, completion_tokens=60), reasoning_tokens=40),
    ]


def test_stream_cut_before_finish_is_an_error() -> None:
    events = both_ways("stream_cut.sse")
    assert isinstance(events[-1], ir.StreamError)
    assert "finishReason" in events[-1].message
    assert [e.text for e in events if isinstance(e, ir.TextDelta)] == ["Once upon", " a time"]
    assert not any(isinstance(e, ir.StreamEnd) for e in events)


def test_cut_mid_event_is_an_error() -> None:
    data = (FIXTURES / "stream_text.sse").read_bytes()
    events = decode(data[: len(data) - 40])  # the closing chunk arrives truncated
    assert isinstance(events[-1], ir.StreamError)


def test_finish_without_usage_ends_at_close_with_last_usage() -> None:
    data = (
        b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}]}}],"usageMetadata":{"promptTokenCount":3}}\n\n'
        b'data: {"candidates":[{"content":{"parts":[{"text":"!"}]},"finishReason":"MAX_TOKENS"}]}\n\n'
    )
    decoder = GeminiStreamDecoder("gemini-x")
    events = decoder.feed(data)
    assert isinstance(events[0], ir.StreamStart) and events[0].model == "gemini-x" and events[0].id.startswith("gemini-")
    assert not any(isinstance(e, ir.StreamEnd) for e in events)
    assert events[-1] == ir.PartStop(0)
    end = decoder.close()
    assert end == [ir.StreamEnd(stop_reason="length", usage=ir.Usage(prompt_tokens=3))]
    assert decoder.feed(b'data: {"candidates":[]}\n\n') == [] and decoder.close() == []


def test_text_answer_signature_and_events_after_end_ignored() -> None:
    data = (
        b'data: {"candidates":[{"content":{"parts":[{"text":"Done"}]}}]}\n\n'
        b'data: {"candidates":[{"content":{"parts":[{"text":"","thoughtSignature":"SIG"}]},"finishReason":"STOP"}],'
        b'"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1}}\n\n'
        b'data: {"candidates":[{"content":{"parts":[{"text":"late"}]}}]}\n\n'
    )
    events = decode(data)[1:]
    assert events == [
        ir.PartStart(0, "text"), ir.TextDelta(0, "Done"), ir.PartStop(0),
        ir.PartStart(1, "reasoning"), ir.ReasoningDelta(1, signature="SIG"), ir.PartStop(1),
        ir.StreamEnd(stop_reason="stop", usage=ir.Usage(prompt_tokens=1, completion_tokens=1)),
    ]


@pytest.mark.parametrize(("data", "message"), [
    (b'data: {"candidates": [\n\n', "not JSON"),
    (b"data: [1]\n\n", "not an object"),
    (b'data: {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}\n\n', "overloaded"),
])
def test_malformed_and_error_events(data: bytes, message: str) -> None:
    events = decode(data)
    assert len(events) == 1 and isinstance(events[0], ir.StreamError) and message in events[0].message
    if b"UNAVAILABLE" in data:
        assert events[0].type == "UNAVAILABLE" and events[0].code == "503"


def test_blocked_prompt_stream() -> None:
    data = b'data: {"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":9}}\r\n\r\n'
    events = decode(data, byte_by_byte=True)
    assert isinstance(events[0], ir.StreamStart)
    assert events[1:] == [ir.StreamEnd(stop_reason="content_filter", usage=ir.Usage(prompt_tokens=9))]


def test_keepalives_and_empty_stream() -> None:
    assert decode(b": keep-alive\n\n")[-1] == ir.StreamError(message="the Gemini stream ended before its finishReason")
    assert isinstance(decode(b"")[0], ir.StreamError)


def test_adaptor_stream_decoder() -> None:
    decoder = GeminiAdaptor().stream_decoder(wire="gemini", model="gemini-2.5-flash")
    events = decoder.feed((FIXTURES / "stream_text.sse").read_bytes()) + decoder.close()
    assert isinstance(events[-1], ir.StreamEnd)
