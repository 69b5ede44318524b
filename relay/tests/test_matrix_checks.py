"""The regression matrix's checks against recorded good and bad answers in every format."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from relay.matrix.answers import parse_sse
from relay.matrix.checks import FAIL, PASS, SKIP, is_retryable, judge
from relay.matrix.variants import Variant

SSE = "text/event-stream"


def v(name: str) -> Variant:
    parts = name.split("-")
    return Variant(parts[0], parts[1], parts[-1] == "stream")


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def chat_sse(*chunks: Any, done: bool = True) -> bytes:
    out = "".join(f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks)
    return (out + ("data: [DONE]\n\n" if done else "")).encode()


def named_sse(*events: dict[str, Any], done: bool = False) -> bytes:
    out = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    return (out + ("data: [DONE]\n\n" if done else "")).encode()


def outcome(name: str, answer: bytes, status: int = 200, content_type: str | None = None) -> tuple[str, str]:
    variant = v(name)
    if content_type is None:
        content_type = SSE if variant.stream else "application/json"
    verdict = judge(variant, status, answer, content_type)
    return verdict.outcome, verdict.reason


# ------------------------------------------------------------------------------- chat fixtures
def chat(content: str | None = "Hello there!", tool_calls: list[Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {"id": "c1", "object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


def call(name: str = "get_weather", arguments: Any = '{"location": "San Francisco, CA", "unit": "celsius"}') -> dict[str, Any]:
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}


def chunk(delta: dict[str, Any], finish: str | None = None, obj: str = "chat.completion.chunk") -> dict[str, Any]:
    return {"id": "c1", "object": obj, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


GOOD_CHAT_STREAM = chat_sse(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hello"}),
                            chunk({"content": " there"}), chunk({}, "stop"),
                            {"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": 3}})


def tool_stream(*fragments: str) -> bytes:
    head = chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})
    parts = [chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}) for f in fragments]
    return chat_sse(chunk({"role": "assistant", "content": None}), head, *parts, chunk({}, "tool_calls"))


@pytest.mark.parametrize(
    ("name", "answer", "expected", "reason"),
    [
        ("chat-plain", chat(), PASS, ""),
        ("chat-plain", chat(content=""), FAIL, "empty answer"),
        ("chat-plain", {"object": "chat.completion", "choices": []}, FAIL, "no choices"),
        ("chat-plain", {"error": {"message": "upstream exploded", "type": "x"}}, FAIL, "error: upstream exploded"),
        ("chat-tools", chat(None, [call()]), PASS, ""),
        ("chat-tools", chat(None, [call(arguments='{"location": "San Fr')]), FAIL, "get_weather arguments are not JSON"),
        ("chat-tools", chat(None, [call(arguments={"location": "SF"})]), FAIL, "arguments are a dict, not a JSON string"),
        ("chat-tools", chat(None, [call(arguments="[1, 2]")]), FAIL, "get_weather arguments are not a JSON object"),
        ("chat-tools", chat(None, [call(name="ping")]), FAIL, "called 'ping', not get_weather"),
        ("chat-tools", chat("It is sunny."), FAIL, "no tool call"),
        ("chat-structured", chat('{"topic": "AI hardware", "confidence": 0.93}'), PASS, ""),
        ("chat-structured", chat('{"topic": "AI hardware"}'), FAIL, "JSON lacks confidence"),
        ("chat-structured", chat('{"topic": "AI", "confidence": "high"}'), FAIL, "JSON: confidence is not a number"),
        ("chat-structured", chat('```json\n{"topic": "AI", "confidence": 1}\n```'), FAIL, "text is not JSON"),
        ("chat-structured", chat("[1]"), FAIL, "JSON is not a JSON object"),
    ],
)
def test_chat_non_stream(name: str, answer: Any, expected: str, reason: str) -> None:
    got, why = outcome(name, body(answer))
    assert got == expected and why.startswith(reason), why


@pytest.mark.parametrize(
    ("name", "answer", "expected", "reason"),
    [
        ("chat-plain-stream", GOOD_CHAT_STREAM, PASS, ""),
        ("chat-plain-stream", GOOD_CHAT_STREAM.rsplit(b"data: [DONE]", 1)[0], FAIL, "stream ended without [DONE]"),
        ("chat-plain-stream", GOOD_CHAT_STREAM + chat_sse(chunk({"content": "late"}), done=False), FAIL, "data after [DONE]"),
        ("chat-plain-stream", chat_sse(chunk({"content": "hi"}), "{oops", chunk({}, "stop")), FAIL, "chunk is not JSON"),
        ("chat-plain-stream", chat_sse(chunk({"content": "hi"}, "stop", obj="chat.completion")), FAIL, "chunk object is 'chat.completion'"),
        ("chat-plain-stream", chat_sse(chunk({"content": "hi"})), FAIL, "no finish_reason"),
        ("chat-plain-stream", chat_sse(chunk({"content": ""}, "stop")), FAIL, "empty answer"),
        ("chat-plain-stream", chat_sse(chunk({"content": "hi"}), {"error": {"message": "cut off"}}), FAIL, "stream error: cut off"),
        ("chat-plain-stream", b"", FAIL, "empty stream"),
        ("chat-tools-stream", tool_stream('{"location":', ' "San Francisco, CA",', ' "unit": "celsius"}'), PASS, ""),
        ("chat-tools-stream", tool_stream('{"location":', ' "San Francisco'), FAIL, "get_weather arguments are not JSON"),
        ("chat-tools-stream", GOOD_CHAT_STREAM, FAIL, "no tool call"),
        ("chat-structured-stream", chat_sse(chunk({"content": '{"topic": "AI", '}), chunk({"content": '"confidence": 0.9}'}),
                                            chunk({}, "stop")), PASS, ""),
        ("chat-structured-stream", chat_sse(chunk({"content": '{"topic": "AI", '}), chunk({}, "length")), FAIL, "text is not JSON"),
    ],
)
def test_chat_stream(name: str, answer: bytes, expected: str, reason: str) -> None:
    got, why = outcome(name, answer)
    assert got == expected and why.startswith(reason), why


def test_stream_variant_answered_with_json_fails_with_its_message() -> None:
    assert outcome("chat-plain-stream", body(chat()), content_type="application/json") == (
        FAIL, "not a stream: content-type application/json"
    )
    err = body({"error": {"message": "stream broke", "type": "server_error"}})
    assert outcome("chat-plain-stream", err, content_type="application/json") == (FAIL, "error: stream broke")


# -------------------------------------------------------------------------- responses fixtures
def response(*output: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "status": status, "error": None, "output": list(output)}


def message_item(text: str, item_id: str = "msg_1") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def fc_item(arguments: str = '{"location": "San Francisco, CA", "unit": "celsius"}', name: str = "get_weather") -> dict[str, Any]:
    return {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": name, "arguments": arguments, "status": "completed"}


def text_stream(pieces: list[str], final_text: str | None = None) -> list[dict[str, Any]]:
    text = "".join(pieces)
    empty = {**message_item(""), "status": "in_progress", "content": []}
    events = [
        {"type": "response.created", "response": response(status="in_progress")},
        {"type": "response.in_progress", "response": response(status="in_progress")},
        {"type": "response.output_item.added", "output_index": 0, "item": empty},
        {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "part": {"type": "output_text", "text": ""}},
        *({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": p}
          for p in pieces),
        {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "text": text if final_text is None else final_text},
        {"type": "response.content_part.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "part": {"type": "output_text", "text": text}},
        {"type": "response.output_item.done", "output_index": 0, "item": message_item(text)},
        {"type": "response.completed", "response": response(message_item(text))},
    ]
    for i, event in enumerate(events):
        event["sequence_number"] = i
    return events


def fc_stream(fragments: list[str], done_args: str | None = None) -> list[dict[str, Any]]:
    args = "".join(fragments)
    final = fc_item(args if done_args is None else done_args)
    return [
        {"type": "response.created", "response": response(status="in_progress")},
        {"type": "response.output_item.added", "output_index": 0, "item": {**fc_item(""), "status": "in_progress"}},
        *({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 0, "delta": f} for f in fragments),
        {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 0, "arguments": final["arguments"]},
        {"type": "response.output_item.done", "output_index": 0, "item": final},
        {"type": "response.completed", "response": response(final)},
    ]


GOOD_RESPONSE_STREAM = text_stream(["Hello", " there", "!"])
SF_ARGS = ['{"location": "San', ' Francisco, CA", "unit"', ': "celsius"}']


def without(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] != kind]


@pytest.mark.parametrize(
    ("name", "answer", "expected", "reason"),
    [
        ("response-plain", response(message_item("Hello!")), PASS, ""),
        ("response-vision", response(message_item("A red square.")), PASS, ""),
        ("response-plain", response(), FAIL, "empty answer"),
        ("response-plain", response(message_item("Hi"), status="failed"), FAIL, "status failed"),
        ("response-plain", {**response(), "error": {"code": "server_error", "message": "boom"}}, FAIL, "error: boom"),
        ("response-plain", {"id": "resp_1", "object": "response"}, FAIL, "no output list"),
        ("response-tools", response(fc_item()), PASS, ""),
        ("response-tools", response(fc_item('{"location": ')), FAIL, "get_weather arguments are not JSON"),
        ("response-tools", response(message_item("Sunny")), FAIL, "no tool call"),
        ("response-structured", response(message_item('{"topic": "AI", "confidence": 0.8}')), PASS, ""),
        ("response-structured", response(message_item('{"confidence": 0.8}')), FAIL, "JSON lacks topic"),
        ("response-structured", response(message_item("AI, 80%")), FAIL, "text is not JSON"),
    ],
)
def test_responses_non_stream(name: str, answer: Any, expected: str, reason: str) -> None:
    got, why = outcome(name, body(answer))
    assert got == expected and why.startswith(reason), why


def _mutated(events: list[dict[str, Any]], index: int, **changes: Any) -> list[dict[str, Any]]:
    events = copy.deepcopy(events)
    events[index].update(changes)
    return events


@pytest.mark.parametrize(
    ("name", "events", "done", "expected", "reason"),
    [
        ("response-plain-stream", GOOD_RESPONSE_STREAM, False, PASS, ""),
        ("response-plain-stream", GOOD_RESPONSE_STREAM, True, PASS, ""),
        ("response-vision-stream", GOOD_RESPONSE_STREAM, False, PASS, ""),
        ("response-plain-stream", GOOD_RESPONSE_STREAM[:-1], True, FAIL, "last event is response.output_item.done"),
        ("response-plain-stream", GOOD_RESPONSE_STREAM[1:], False, FAIL, "first event is response.in_progress"),
        ("response-plain-stream", text_stream(["Hel", "lo"], final_text="Help"), False, FAIL, "output_text.done differs"),
        ("response-plain-stream", _mutated(GOOD_RESPONSE_STREAM, 5, sequence_number=1), False, FAIL, "sequence_number 1 after 4"),
        ("response-plain-stream", _mutated(GOOD_RESPONSE_STREAM, 4, item_id="msg_9"), False, FAIL, "output_text.delta for unknown item"),
        ("response-plain-stream", [*GOOD_RESPONSE_STREAM[:3], {"type": "error", "message": "overloaded"}], False, FAIL,
         "stream error: overloaded"),
        ("response-plain-stream", [GOOD_RESPONSE_STREAM[0], {"type": "response.failed", "response": {
            **response(status="failed"), "error": {"code": "server_error", "message": "upstream died"}}}], False, FAIL,
         "response.failed: upstream died"),
        ("response-plain-stream", [GOOD_RESPONSE_STREAM[0], GOOD_RESPONSE_STREAM[-1]], False, PASS, ""),
        ("response-plain-stream", [GOOD_RESPONSE_STREAM[0], {"type": "response.completed", "response": response()}], False, FAIL,
         "empty answer"),
        ("response-tools-stream", fc_stream(SF_ARGS), False, PASS, ""),
        ("response-tools-stream", fc_stream(SF_ARGS, done_args='{"location": "LA"}'), False, FAIL, "arguments.done differs"),
        ("response-tools-stream", fc_stream(SF_ARGS[:2]), False, FAIL, "get_weather arguments are not JSON"),
        ("response-tools-stream", GOOD_RESPONSE_STREAM, False, FAIL, "no tool call"),
        ("response-structured-stream", text_stream(['{"topic": "AI",', ' "confidence": 0.7}']), False, PASS, ""),
        ("response-structured-stream", text_stream(['{"topic": "AI",']), False, FAIL, "text is not JSON"),
    ],
)
def test_responses_stream(name: str, events: list[dict[str, Any]], done: bool, expected: str, reason: str) -> None:
    got, why = outcome(name, named_sse(*events, done=done))
    assert got == expected and why.startswith(reason), why


def test_responses_stream_event_name_must_match_type_and_completed_must_agree() -> None:
    raw = named_sse(*GOOD_RESPONSE_STREAM).replace(b"event: response.in_progress", b"event: response.created", 1)
    assert outcome("response-plain-stream", raw) == (FAIL, "event name response.created != type response.in_progress")
    events = copy.deepcopy(GOOD_RESPONSE_STREAM)
    events[-1]["response"] = response(message_item("Something else"))
    assert outcome("response-plain-stream", named_sse(*events)) == (FAIL, "completed output differs from deltas")


# ----------------------------------------------------------------------------- claude fixtures
def claude(*content: dict[str, Any]) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": list(content),
            "stop_reason": "end_turn", "usage": {"input_tokens": 5, "output_tokens": 3}}


def tool_use(name: str = "get_weather", value: Any = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_1", "name": name,
            "input": {"location": "San Francisco, CA", "unit": "celsius"} if value is None else value}


TEXT = {"type": "text", "text": "Hello there!"}


@pytest.mark.parametrize(
    ("name", "answer", "expected", "reason"),
    [
        ("claude-plain", claude(TEXT), PASS, ""),
        ("claude-plain", claude(), FAIL, "empty content"),
        ("claude-plain", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, FAIL, "error: Overloaded"),
        ("claude-plain", {**claude(TEXT), "type": "completion"}, FAIL, "type is 'completion', not message"),
        ("claude-tools", claude({"type": "text", "text": "Checking."}, tool_use()), PASS, ""),
        ("claude-tools", claude(tool_use(value='{"location": "SF"}')), FAIL, "tool_use input is not an object"),
        ("claude-tools", claude(tool_use(name="ping")), FAIL, "called 'ping', not get_weather"),
        ("claude-tools", claude(TEXT), FAIL, "no tool call"),
        ("claude-structured", claude(tool_use("topic_classifier", {"topic": "AI", "confidence": 0.9})), PASS, ""),
        ("claude-structured", claude(tool_use("topic_classifier", {"topic": "AI"})), FAIL, "topic_classifier input lacks confidence"),
        ("claude-structured", claude({"type": "text", "text": '{"topic": "AI", "confidence": 0.9}'}), FAIL, "no topic_classifier tool_use"),
    ],
)
def test_claude_non_stream(name: str, answer: Any, expected: str, reason: str) -> None:
    got, why = outcome(name, body(answer))
    assert got == expected and why.startswith(reason), why


START = {"type": "message_start", "message": {**claude(), "stop_reason": None}}
PING = {"type": "ping"}
M_DELTA = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 3}}
STOP = {"type": "message_stop"}


def block(index: int, content_block: dict[str, Any], *deltas: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "content_block_start", "index": index, "content_block": content_block},
            *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
            {"type": "content_block_stop", "index": index}]


def text_block(index: int = 0, *pieces: str) -> list[dict[str, Any]]:
    return block(index, {"type": "text", "text": ""}, *({"type": "text_delta", "text": p} for p in pieces or ("Hello", " there")))


def tool_block(index: int, name: str, *fragments: str) -> list[dict[str, Any]]:
    return block(index, {"type": "tool_use", "id": "toolu_1", "name": name, "input": {}},
                 *({"type": "input_json_delta", "partial_json": f} for f in fragments))


GOOD_CLAUDE_STREAM = [START, PING, *text_block(0), M_DELTA, STOP]
TOOL_CLAUDE_STREAM = [START, *text_block(0, "Let me check."), *tool_block(1, "get_weather", *SF_ARGS), M_DELTA, STOP]


@pytest.mark.parametrize(
    ("name", "events", "expected", "reason"),
    [
        ("claude-plain-stream", GOOD_CLAUDE_STREAM, PASS, ""),
        ("claude-plain-stream", [START, *text_block(0)[:-1], M_DELTA, text_block(0)[-1], STOP], FAIL,
         "message_delta where content_block_delta/content_block_stop expected"),
        ("claude-plain-stream", [*text_block(0), START, M_DELTA, STOP], FAIL, "content_block_start where message_start expected"),
        ("claude-plain-stream", GOOD_CLAUDE_STREAM[:-1], FAIL, "stream ended before message_stop"),
        ("claude-plain-stream", [*GOOD_CLAUDE_STREAM, M_DELTA], FAIL, "message_delta after message_stop"),
        ("claude-plain-stream", [START, *text_block(0), STOP], FAIL, "message_stop where content_block_start/message_delta expected"),
        ("claude-plain-stream", [START, *text_block(1), M_DELTA, STOP], FAIL, "block index 1 where 0 expected"),
        ("claude-plain-stream", [START, M_DELTA, STOP], FAIL, "no content blocks"),
        ("claude-plain-stream", [START, *text_block(0), {**M_DELTA, "delta": {"stop_reason": None}}, STOP], FAIL,
         "message_delta without stop_reason"),
        ("claude-plain-stream", [START, *text_block(0)[:2], {"type": "error", "error": {"type": "overloaded_error",
         "message": "Overloaded"}}], FAIL, "stream error: Overloaded"),
        ("claude-plain-stream", [START, *block(0, {"type": "text", "text": ""}, {"type": "input_json_delta", "partial_json": "{"}),
                                 M_DELTA, STOP], FAIL, "input_json_delta in a text block"),
        ("claude-tools-stream", TOOL_CLAUDE_STREAM, PASS, ""),
        ("claude-tools-stream", [START, *tool_block(0, "get_weather"), M_DELTA, STOP], PASS, ""),
        ("claude-tools-stream", [START, *tool_block(0, "get_weather", *SF_ARGS[:2]), M_DELTA, STOP], FAIL,
         "input_json_delta not JSON"),
        ("claude-tools-stream", GOOD_CLAUDE_STREAM, FAIL, "no tool call"),
        ("claude-structured-stream", [START, *tool_block(0, "topic_classifier", '{"topic": "AI", ', '"confidence": 0.9}'),
                                      M_DELTA, STOP], PASS, ""),
        ("claude-structured-stream", [START, *tool_block(0, "topic_classifier", '{"topic": "AI"}'), M_DELTA, STOP], FAIL,
         "topic_classifier input lacks confidence"),
    ],
)
def test_claude_stream(name: str, events: list[dict[str, Any]], expected: str, reason: str) -> None:
    got, why = outcome(name, named_sse(*events))
    assert got == expected and why.startswith(reason), why


# ------------------------------------------------------------------------- skips and parsing
def oai_error(message: str, code: str | None = None) -> bytes:
    return body({"error": {"message": message, "type": "invalid_request_error", "code": code}})


@pytest.mark.parametrize(
    ("name", "status", "answer", "expected", "reason"),
    [
        ("response-plain", 404, body({"error": {"message": "Invalid URL (POST /v1/responses)"}}), SKIP, "route answers 404"),
        ("claude-plain", 405, b"Method Not Allowed", SKIP, "route answers 405"),
        ("chat-plain", 404, oai_error("upstream answered 404: Not Found", "bad_upstream_response"), SKIP, "upstream answers 404"),
        ("chat-plain", 503, oai_error("no enabled channel serves model m for group default", "model_not_available"), SKIP,
         "no channel for model"),
        ("chat-plain", 404, oai_error("The model `m` does not exist", "model_not_found"), SKIP, "no channel for model"),
        ("claude-plain", 503, body({"type": "error", "error": {"type": "api_error", "message": "No available channels for model m"}}),
         SKIP, "no channel for model"),
        ("response-vision", 400, oai_error("Model m does not support image input"), SKIP, "model takes no images"),
        ("response-vision-stream", 400, oai_error("Invalid image: not supported"), SKIP, "model takes no images"),
        ("response-plain", 400, oai_error("Invalid image: not supported"), FAIL, "HTTP 400: Invalid image"),
        ("chat-plain-stream", 400, oai_error("Streaming is not supported for this model"), SKIP, "streaming unsupported"),
        ("chat-plain", 400, oai_error("Unknown parameter: 'temperature'"), FAIL, "HTTP 400: Unknown parameter"),
        ("chat-plain", 500, b"<html>oops</html>", FAIL, "HTTP 500: <html>oops</html>"),
    ],
)
def test_skip_rules(name: str, status: int, answer: bytes, expected: str, reason: str) -> None:
    got, why = outcome(name, answer, status=status, content_type="application/json")
    assert got == expected and why.startswith(reason), why


def test_retryable_only_for_5xx_that_is_not_a_missing_channel() -> None:
    assert is_retryable(500, b"") and is_retryable(502, oai_error("bad gateway"))
    assert is_retryable(503, oai_error("upstream overloaded"))
    assert not is_retryable(503, oai_error("x", "model_not_available"))
    assert not is_retryable(429, oai_error("slow down")) and not is_retryable(400, b"")


def test_parse_sse_handles_crlf_comments_and_multiline_data() -> None:
    text = ": keep-alive\r\nevent: a\r\ndata: {\"x\":\r\ndata: 1}\r\n\r\ndata: [DONE]"
    events = parse_sse(text)
    assert [(e.event, e.data) for e in events] == [("a", '{"x":\n1}'), (None, "[DONE]")]
    assert json.loads(events[0].data) == {"x": 1}
