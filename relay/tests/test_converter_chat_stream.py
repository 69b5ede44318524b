"""OpenAI Chat Completions converter (relay.converters.chat): requests, responses and streams
against the IR, checked with the official `openai` SDK's own models."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from relay.converters import chat
from relay.converters.chat_stream import chat_id
from relay.ir import (
    PartStart,
    PartStop,
    ReasoningDelta,
    Request,
    StreamEnd,
    StreamError,
    StreamStart,
    TextDelta,
    ToolArgsDelta,
    Usage,
)

from .chat_fixtures import chunks_of, decode, sse

# ============================================================================ stream decoder


def test_decoder_text_stream_with_usage_chunk():
    events = decode(sse("stream_text.sse"))
    assert events == [
        StreamStart(id="chatcmpl-123", model="gpt-4o-mini", created=1694268190),
        PartStart(0, "text"),
        TextDelta(0, "Hello"),
        TextDelta(0, " wörld 👋"),
        PartStop(0),
        StreamEnd(stop_reason="stop", usage=Usage(prompt_tokens=9, completion_tokens=3, cached_tokens=4)),
    ]


def test_decoder_tool_calls():
    events = decode(sse("stream_tool_calls.sse"))
    assert events[1:] == [
        PartStart(0, "tool_call", tool_call_id="call_DdmO9pD3xa9XTPNJ32zg2hcA", tool_name="get_weather"),
        ToolArgsDelta(0, '{"'),
        ToolArgsDelta(0, 'location":"Paris"}'),
        PartStop(0),
        PartStart(1, "tool_call", tool_call_id="call_aBcD", tool_name="get_time"),
        ToolArgsDelta(1, '{"tz":"CET"}'),
        PartStop(1),
        StreamEnd(stop_reason="tool_calls", usage=None),  # no include_usage: no usage
    ]


def test_decoder_reasoning_then_text_with_usage_in_finish_chunk():
    events = decode(sse("stream_reasoning.sse"))
    assert events[1:] == [
        PartStart(0, "reasoning"),
        ReasoningDelta(0, "Compare 9.11"),
        ReasoningDelta(0, " and 9.9."),
        PartStop(0),
        PartStart(1, "text"),
        TextDelta(1, "9.9"),
        TextDelta(1, " is greater."),
        PartStop(1),
        StreamEnd(stop_reason="stop", usage=Usage(prompt_tokens=20, completion_tokens=40), reasoning_tokens=30),
    ]


@pytest.mark.parametrize("name", ["stream_text.sse", "stream_tool_calls.sse", "stream_reasoning.sse"])
def test_decoder_is_chunking_independent(name):
    data = sse(name)
    whole = decode(data)
    assert decode(data, step=1) == whole
    assert decode(data.replace(b"\n", b"\r\n"), step=7) == whole


def test_decoder_error_chunk_and_garbage():
    data = (
        b"data: not json\n\n"
        b": comment\n\n"
        b'data: {"id":"c","model":"m","created":1,"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
        b'data: {"error":{"message":"overloaded","type":"server_error","code":"503"}}\n\n'
        b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"ignored"}}]}\n\n'
    )
    events = decode(data)
    assert events[-1] == StreamError(message="overloaded", type="server_error", code="503")
    assert TextDelta(0, "ignored") not in events


def test_decoder_early_end_and_end_without_done():
    cut = b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
    assert decode(cut)[-1] == StreamError("upstream stream ended early")
    finished = cut + b'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}'  # no blank line
    events = decode(finished)
    assert events[-2:] == [PartStop(0), StreamEnd(stop_reason="length")]
    assert decode(b"") == [StreamError("upstream stream ended early")]


def test_decoder_usage_chunk_ends_before_done_and_done_without_finish():
    body = sse("stream_text.sse")
    decoder = chat.StreamDecoder()
    before_done = body[: body.index(b"data: [DONE]")]
    events = decoder.feed(before_done)
    assert isinstance(events[-1], StreamEnd)  # the usage chunk after finish ends it
    assert decoder.feed(b"data: [DONE]\n\n") == [] and decoder.close() == []
    no_finish = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"a"}}]}\n\ndata: [DONE]\n\n'
    assert decode(no_finish)[-1] == StreamEnd(stop_reason="stop")


def test_decoder_skips_azure_prompt_filter_chunk():
    azure = b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0}]}\n\n'
    events = decode(azure + sse("stream_text.sse"))
    assert events[0] == StreamStart(id="chatcmpl-123", model="gpt-4o-mini", created=1694268190)
    assert decode(b"data: [DONE]\n\n") == [StreamStart(id="", model=""), StreamEnd()]


def test_decoder_tolerates_compatible_server_quirks():
    chunks = [
        # every call on index 0 with distinct ids, name repeated, arguments as an object
        {
            "id": "q",
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}]},
                }
            ],
        },
        {
            "id": "q",
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]},
                }
            ],
        },
        {
            "id": "q",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": {"x": 1}}}]
                    },
                }
            ],
        },
        # no index at all
        {
            "id": "q",
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"id": "c", "function": {"name": "h", "arguments": "{"}}]}}
            ],
        },
        {"id": "q", "choices": [{"index": 0, "delta": {"tool_calls": [{"function": {"arguments": "}"}}]}}]},
        {
            "id": "q",
            "choices": [{"index": 0, "delta": {"reasoning": "r", "reasoning_content": "r"}, "finish_reason": "stop"}],
        },
    ]
    data = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    events = decode(data)
    starts = [(e.tool_call_id, e.tool_name) for e in events if isinstance(e, PartStart) and e.kind == "tool_call"]
    assert starts == [("a", "f"), ("b", "g"), ("c", "h")]
    args = [(e.index, e.arguments) for e in events if isinstance(e, ToolArgsDelta)]
    assert args == [(0, "{}"), (1, '{"x":1}'), (2, "{"), (2, "}")]
    assert ReasoningDelta(3, "r") in events  # one of reasoning / reasoning_content, not both
    assert events[-1] == StreamEnd(stop_reason="tool_calls")  # "stop" with tool calls


def test_decoder_keeps_no_text():
    decoder = chat.StreamDecoder()
    decoder.feed(b'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n')
    chunk = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"' + b"x" * 1000 + b'"}}]}\n\n'
    for _ in range(2000):
        decoder.feed(chunk)
    # 2 MB of text went through; the decoder's own state stays tiny.
    state = {k: v for k, v in vars(decoder).items() if k != "_splitter"}
    assert len(repr(state)) < 1000
    assert decoder._splitter._buffer == b""


# ============================================================================ stream encoder


def sample_events() -> list[Any]:
    return [
        StreamStart(id="up", model="upstream-model", created=5),
        PartStart(0, "reasoning"),
        ReasoningDelta(0, "think"),
        ReasoningDelta(0, signature="sig"),
        PartStop(0),
        PartStart(1, "text"),
        TextDelta(1, "Hello"),
        TextDelta(1, " there"),
        PartStop(1),
        PartStart(2, "tool_call", tool_call_id="call_1", tool_name="get_weather"),
        ToolArgsDelta(2, '{"city":'),
        ToolArgsDelta(2, '"Paris"}'),
        PartStop(2),
        PartStart(3, "tool_call", tool_call_id="call_2", tool_name="get_time"),
        ToolArgsDelta(3, "{}"),
        PartStop(3),
        StreamEnd(
            stop_reason="tool_calls",
            usage=Usage(prompt_tokens=10, completion_tokens=5, cached_tokens=2),
            reasoning_tokens=1,
        ),
    ]


def encode(events: list[Any], include_usage: bool) -> bytes:
    encoder = chat.StreamEncoder(Request(model="alias", include_usage=include_usage), "resp_1", "alias", 1700000000)
    return b"".join(encoder.encode(e) for e in events) + encoder.close()


@pytest.mark.parametrize("include_usage", [True, False])
def test_encoder_chunks_match_the_api(include_usage):
    data = encode(sample_events(), include_usage)
    chunks = chunks_of(data)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        assert (chunk["id"], chunk["model"], chunk["created"]) == ("chatcmpl-resp_1", "alias", 1700000000)
        assert chunk["object"] == "chat.completion.chunk"
        if include_usage:
            assert "usage" in chunk
        else:
            assert "usage" not in chunk
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"reasoning_content": "think"}
    assert deltas[2:4] == [{"content": "Hello"}, {"content": " there"}]
    assert deltas[4] == {
        "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
        ]
    }
    assert deltas[5] == {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}
    assert deltas[7]["tool_calls"][0]["index"] == 1 and deltas[7]["tool_calls"][0]["id"] == "call_2"
    assert deltas[-1] == {}
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == "tool_calls"
    if include_usage:
        assert all(c["usage"] is None for c in chunks[:-1])
        assert chunks[-1]["choices"] == []
        assert chunks[-1]["usage"]["prompt_tokens"] == 10
        assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 2
    else:
        assert chunks[-1] is finals[0]


def test_encoder_output_accumulates_in_the_sdk():
    state = ChatCompletionStreamState()
    for chunk in chunks_of(encode(sample_events(), True)):
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    final = state.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Hello there"
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls] == [
        ("call_1", "get_weather", '{"city":"Paris"}'),
        ("call_2", "get_time", "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.completion_tokens == 5


@pytest.mark.parametrize("include_usage", [True, False])
def test_encoder_then_decoder_gives_the_same_events(include_usage):
    events = sample_events()
    decoded = decode(encode(events, include_usage), step=3)
    expected = [e for e in events if not (isinstance(e, ReasoningDelta) and not e.text)]  # signatures dropped
    expected[0] = StreamStart(id="chatcmpl-resp_1", model="alias", created=1700000000)
    if not include_usage:
        expected[-1] = StreamEnd(stop_reason="tool_calls", usage=None)
    assert decoded == expected


@pytest.mark.parametrize("name", ["stream_text.sse", "stream_tool_calls.sse", "stream_reasoning.sse"])
def test_fixture_streams_survive_decode_encode_decode(name):
    events = decode(sse(name))
    start, end = events[0], events[-1]
    request = Request(model=start.model, include_usage=end.usage is not None)
    encoder = chat.StreamEncoder(request, start.id, start.model, start.created)
    start.id = chat_id(start.id)
    assert decode(b"".join(encoder.encode(e) for e in events) + encoder.close()) == events


def test_encoder_separates_reasoning_blocks_and_errors():
    encoder = chat.StreamEncoder(Request(model="m"), "chatcmpl-x", "m", 1)
    out = b"".join(
        encoder.encode(e)
        for e in [
            PartStart(0, "reasoning"),
            ReasoningDelta(0, "a"),
            PartStop(0),
            PartStart(1, "reasoning"),
            ReasoningDelta(1, "b"),
        ]
    )
    assert b'"reasoning_content":"\\n\\nb"' in out
    error = encoder.encode(StreamError("boom", "upstream_error", "502"))
    assert orjson.loads(error[6:]) == {
        "error": {"message": "boom", "type": "upstream_error", "param": None, "code": "502"}
    }
    assert encoder.encode(TextDelta(2, "late")) == b""  # nothing after the error
    assert chat.StreamEncoder(Request(model="m"), "x", "m", 1).error("m", "t", None).startswith(b'data: {"error":')


def test_encoder_without_start_event_still_opens_with_role_chunk():
    encoder = chat.StreamEncoder(Request(model="m"), "id", "m", 1)
    first = chunks_of(encoder.encode(TextDelta(0, "hi")) + encoder.close())
    assert first[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert first[1]["choices"][0]["delta"] == {"content": "hi"}
