"""The OpenAI Responses converter (relay.converters.responses): pure, no Django, no I/O.

Wire shapes are checked against the official `openai` SDK's pydantic models (Response,
ResponseStreamEvent), the closest thing to the API's own schema we can run offline.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from relay import ir
from relay.converters import converter, responses_stream
from relay.converters import responses as R

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
EVENTS = TypeAdapter(ResponseStreamEvent)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def sse_events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, parsed data) of every SSE frame; each frame must be `event:` + `data:`."""
    out = []
    for frame in data.decode().split("\n\n"):
        if not frame:
            continue
        name_line, data_line = frame.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        payload = json.loads(data_line[6:])
        assert payload["type"] == name_line[7:]
        out.append((name_line[7:], payload))
    return out


def sdk_check(events: list[tuple[str, dict[str, Any]]]) -> None:
    """Every event parses as the SDK's event type, numbered 0, 1, 2, ..."""
    for seq, (_, payload) in enumerate(events):
        parsed = EVENTS.validate_python(payload)
        assert parsed.type == payload["type"] and parsed.sequence_number == seq


def simple_request(**fields: Any) -> ir.Request:
    return R.request_to_ir({"model": "gpt-5", "input": "hi", **fields})


# --------------------------------------------------------------------------------------- requests


def test_module_interface() -> None:
    module = converter("responses")
    for name in ("request_to_ir", "request_from_ir", "response_to_ir", "response_from_ir", "StreamDecoder", "StreamEncoder"):
        assert hasattr(module, name)
    assert module.StreamEncoder is responses_stream.StreamEncoder


def test_string_input_and_scalars() -> None:
    req = R.request_to_ir({
        "model": "gpt-4o", "input": "Hello", "instructions": "Be brief.", "max_output_tokens": 50,
        "temperature": 0.2, "top_p": 0.9, "user": "u1", "metadata": {"k": "v"}, "store": True,
        "previous_response_id": "resp_1", "truncation": "auto", "service_tier": "flex", "background": False,
        "safety_identifier": "s1", "some_future_field": {"x": 1},
    })
    assert req.system == [ir.TextPart("Be brief.")]
    assert req.messages == [ir.Message("user", [ir.TextPart("Hello")])]
    assert (req.max_output_tokens, req.temperature, req.top_p, req.user) == (50, 0.2, 0.9, "u1")
    assert req.store is True and req.previous_response_id == "resp_1" and req.metadata == {"k": "v"}
    assert req.extra == {"truncation": "auto", "service_tier": "flex", "background": False, "safety_identifier": "s1",
                         "some_future_field": {"x": 1}}
    body = R.request_from_ir(req)
    assert body["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]}]
    assert body["instructions"] == "Be brief." and body["service_tier"] == "flex" and body["truncation"] == "auto"
    assert "some_future_field" not in body  # only keys the Responses API accepts are passed on
    assert R.request_to_ir(body).messages == req.messages


def test_codex_request_converts_and_round_trips() -> None:
    payload = fixture("codex_request.json")
    req = R.request_to_ir(copy.deepcopy(payload))
    # instructions + the leading developer message are the system prompt; the later one stays.
    assert [p.text for p in req.system] == [payload["instructions"], payload["input"][0]["content"][0]["text"]]
    assert [m.role for m in req.messages] == ["user", "user", "assistant", "tool", "assistant", "tool", "assistant",
                                              "tool", "assistant", "developer", "user"]
    reasoning, shell_call = req.messages[2].parts
    assert reasoning == ir.ReasoningPart(encrypted="gAAAAABoFAKEencryptedreasoning==", id="rs_0a1b",
                                         summary=["**Inspecting the repository**"])
    assert shell_call == ir.ToolCallPart("call_shell_1", "shell", '{"command":["ls","-la"]}')
    assert req.messages[4].parts[0].kind == "custom"
    assert req.messages[6].parts[0].name == "mcp__github__get_issue"
    web, text = req.messages[8].parts
    assert web.kind == "builtin" and web.raw == payload["input"][10] and text == ir.TextPart("The test passes now.")
    assert isinstance(req.messages[10].parts[1], ir.ImagePart)
    tools = {t.name: t for t in req.tools}
    assert tools["shell"].kind == "function" and tools["apply_patch"].kind == "custom"
    assert tools["mcp__github__"].builtin_type == "namespace"
    assert tools["mcp__github__get_issue"].parameters == payload["tools"][2]["tools"][0]["parameters"]
    assert tools["web_search"].kind == "builtin" and tools["local_shell"].raw == {"type": "local_shell"}
    assert req.store is False and req.reasoning == ir.Reasoning(effort="medium", summary="auto")
    assert req.extra["include"] == ["reasoning.encrypted_content"] and req.extra["text"] == {"verbosity": "medium"}

    body = R.request_from_ir(req)
    assert body["instructions"] == payload["instructions"] + "\n\n" + payload["input"][0]["content"][0]["text"]
    assert body["tools"] == payload["tools"]  # namespace sent once, its flattened functions not repeated
    assert body["include"] == ["reasoning.encrypted_content"] and body["store"] is False and body["stream"] is True
    assert body["prompt_cache_key"] == payload["prompt_cache_key"] and body["text"] == {"verbosity": "medium"}
    items = body["input"]
    assert items[2] == {"type": "reasoning", "id": "rs_0a1b", "summary": payload["input"][3]["summary"],
                        "encrypted_content": "gAAAAABoFAKEencryptedreasoning=="}
    assert items[5]["type"] == "custom_tool_call" and items[6]["type"] == "custom_tool_call_output"
    assert items[7] == {"type": "function_call", "call_id": "call_mcp_1", "namespace": "mcp__github__",
                        "name": "get_issue", "arguments": '{"number":7}'}
    assert items[9] == payload["input"][10]  # the web_search_call item, verbatim
    # Once normalised (system joined), conversion is a fixed point.
    again = R.request_to_ir(body)
    assert again.messages == req.messages and again.tools == req.tools and again.extra == req.extra
    assert R.request_from_ir(again) == body


def test_input_content_kinds() -> None:
    req = R.request_to_ir({"model": "m", "input": [
        {"role": "user", "content": [
            {"type": "input_text", "text": "see"},
            {"type": "input_image", "image_url": "https://x/a.png", "detail": "high"},
            {"type": "input_image", "file_id": "file-img"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
            {"type": "input_file", "file_id": "file-doc"},
            {"type": "input_file", "file_url": "https://x/b.pdf"},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        ]},
        {"role": "assistant", "content": "plain assistant text"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
    ]})
    parts = req.messages[0].parts
    assert parts[1] == ir.ImagePart(url="https://x/a.png", detail="high")
    assert parts[2] == ir.FilePart(file_id="file-img", media_type="image/*")
    assert parts[3] == ir.FilePart(data="JVBERi0=", media_type="application/pdf", filename="a.pdf")
    assert parts[6] == ir.AudioPart("UklGRg==", "wav")
    assert req.messages[1].parts == [ir.TextPart("plain assistant text"), ir.TextPart("I can't.")]  # merged turn
    content = R.request_from_ir(req)["input"][0]["content"]
    assert content[2] == {"type": "input_image", "file_id": "file-img", "detail": "auto"}
    assert content[3] == {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}
    assert content[4] == {"type": "input_file", "file_id": "file-doc"}
    assert content[5] == {"type": "input_file", "file_url": "https://x/b.pdf"}
    assert R.request_to_ir(R.request_from_ir(req)).messages[0] == req.messages[0]


def test_tools_choice_and_format() -> None:
    req = R.request_to_ir({
        "model": "m", "input": "x",
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True,
                   "defer_loading": True},
                  {"type": "file_search", "vector_store_ids": ["vs_1"]},
                  {"type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.deepwiki.com/mcp"}],
        "tool_choice": {"type": "function", "name": "f"},
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
        "reasoning": {"effort": "high"},
    })
    assert req.tool_choice == ir.ToolChoice("tool", "f")
    assert req.tools[0].raw is not None and req.tools[1].builtin_type == "file_search"
    assert req.response_format == ir.ResponseFormat("json_schema", name="out", schema={"type": "object"}, strict=True)
    body = R.request_from_ir(req)
    assert body["tools"][0] == {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True,
                                "defer_loading": True}
    assert body["tool_choice"] == {"type": "function", "name": "f"}
    assert body["text"] == {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}}
    assert "include" not in body  # store not false: no encrypted reasoning needed

    hosted = R.request_to_ir({"model": "m", "input": "x", "tool_choice": {"type": "web_search_preview"}})
    assert hosted.tool_choice == ir.ToolChoice("required")
    assert R.request_from_ir(hosted)["tool_choice"] == {"type": "web_search_preview"}
    allowed = {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]}
    assert R.request_from_ir(R.request_to_ir({"model": "m", "input": "x", "tool_choice": allowed}))["tool_choice"] == allowed
    assert R.request_to_ir({"model": "m", "input": "x", "tool_choice": "none"}).tool_choice == ir.ToolChoice("none")


def test_request_from_foreign_ir() -> None:
    """An IR as the Chat or Anthropic converter builds it, sent to a Responses upstream."""
    req = ir.Request(
        model="gpt-5", stream=True, store=False, system=[ir.TextPart("S1"), ir.TextPart("S2")],
        messages=[
            ir.Message("user", [ir.TextPart("look"), ir.ImagePart(data="iVBOR", media_type="image/png")]),
            ir.Message("assistant", [
                ir.ReasoningPart(text="thinking...", signature="sig"),  # Anthropic: dropped
                ir.ReasoningPart(encrypted="redacted-data", redacted=True),  # Anthropic redacted: dropped
                ir.TextPart("calling"),
                ir.ToolCallPart("toolu_1", "get_weather", '{"city":"Paris"}'),
            ]),
            ir.Message("tool", [ir.ToolResultPart("toolu_1", [ir.TextPart("sunny")], is_error=False),
                                ir.ToolResultPart("toolu_2", [ir.TextPart("a"), ir.ImagePart(url="https://x/i.png")])]),
            ir.Message("system", [ir.TextPart("late system note")]),
        ],
        tools=[ir.ToolDef("get_weather", "Weather", {"type": "object", "properties": {}}),
               ir.ToolDef("web_search", kind="builtin", builtin_type="web_search_20250305",
                          raw={"type": "web_search_20250305", "name": "web_search"})],
        tool_choice=ir.ToolChoice("tool", "get_weather"),
        reasoning=ir.Reasoning(budget_tokens=8000, enabled=True),
        response_format=ir.ResponseFormat("json_object"), stop=["END"], seed=1, top_k=5,
        extra={"logprobs": True, "service_tier": "standard_only", "stream_options": {"include_usage": True}},
    )
    body = R.request_from_ir(req)
    assert body["instructions"] == "S1\n\nS2"
    assert body["input"][0]["content"][1] == {"type": "input_image", "image_url": "data:image/png;base64,iVBOR",
                                              "detail": "auto"}
    assert [i["type"] for i in body["input"]] == ["message", "message", "function_call", "function_call_output",
                                                  "function_call_output", "message"]
    assert body["input"][3] == {"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"}
    assert body["input"][4]["output"][1] == {"type": "input_image", "image_url": "https://x/i.png", "detail": "auto"}
    assert body["input"][5]["role"] == "system"
    assert body["tools"] == [{"type": "function", "name": "get_weather", "description": "Weather",
                              "parameters": {"type": "object", "properties": {}}, "strict": False},
                             {"type": "web_search"}]
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["text"] == {"format": {"type": "json_object"}}
    for key in ("stop", "seed", "top_k", "logprobs", "service_tier", "stream_options"):
        assert key not in body


def test_item_references_keep_their_place() -> None:
    payload = {"model": "m", "input": [
        {"type": "item_reference", "id": "msg_a"},
        {"role": "user", "content": "next"},
        {"type": "item_reference", "id": "fc_b"},
    ]}
    req = R.request_to_ir(payload)
    assert req.extra["item_references"] == [{"id": "msg_a", "position": 0}, {"id": "fc_b", "position": 1}]
    items = R.request_from_ir(req)["input"]
    assert [i.get("id") for i in items] == ["msg_a", None, "fc_b"]


@pytest.mark.parametrize(("payload", "param"), [
    ({"input": "x"}, "model"),
    ({"model": "m", "input": 3}, "input"),
    ({"model": "m", "input": [1]}, "input[0]"),
    ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": [{"role": "user", "content": 5}]}, "input[0].content"),
    ({"model": "m", "input": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                              {"role": "user", "content": "c"},
                              {"role": "user", "content": [{"type": "text", "text": "x"}]}]}, "input[3].content[0].type"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]}, "input[0].content[0].text"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "input[0].content[0].image_url"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file"}]}]}, "input[0].content[0].file_data"),
    ({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
     "input[0].arguments"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]}, "input[0].output"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "bad"}]}]},
     "input[0].output[0].type"),
    ({"model": "m", "input": [{"content": "no type, no role"}]}, "input[0].type"),
    ({"model": "m", "input": [{"type": "reasoning", "summary": "x"}]}, "input[0].summary"),
    ({"model": "m", "input": [{"type": "reasoning", "summary": [], "encrypted_content": "oneapi:thinking:%%"}]},
     "input[0].encrypted_content"),
    ({"model": "m", "tools": {"type": "function"}}, "tools"),
    ({"model": "m", "tools": [{"name": "f"}]}, "tools[0].type"),
    ({"model": "m", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "m", "tools": [{"type": "namespace", "name": "n", "tools": [{"type": "web_search"}]}]},
     "tools[0].tools[0].type"),
    ({"model": "m", "tool_choice": "sometimes"}, "tool_choice"),
    ({"model": "m", "text": {"format": {"type": "xml"}}}, "text.format.type"),
    ({"model": "m", "text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
    ({"model": "m", "temperature": "hot"}, "temperature"),
    ({"model": "m", "max_output_tokens": 1.5}, "max_output_tokens"),
    ({"model": "m", "instructions": ["x"]}, "instructions"),
    ({"model": "m", "metadata": "x"}, "metadata"),
])
def test_bad_requests_name_the_param(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(ir.ConversionError) as info:
        R.request_to_ir(payload)
    assert info.value.param == param


def test_unknown_item_types_pass_through() -> None:
    items = [{"type": "local_shell_call", "id": "lsh_1", "call_id": "call_9", "status": "completed",
              "action": {"type": "exec", "command": ["ls"], "env": {}}},
             {"type": "local_shell_call_output", "id": "call_9", "output": "a.txt"},
             {"type": "some_future_item", "id": "x_1"}]
    req = R.request_to_ir({"model": "m", "input": [{"role": "user", "content": "go"}, *items]})
    assert [p.raw for p in req.messages[1].parts] == items
    assert R.request_from_ir(req)["input"][1:3] == items[:2]  # the unknown type is not re-sent


# --------------------------------------------------------------------------------------- responses


def test_response_round_trip_and_sdk_parse() -> None:
    payload = fixture("response_tools.json")
    resp = R.response_to_ir(payload)
    assert resp.id == "resp_68c0ffee" and resp.created == 1756300000 and resp.stop_reason == "tool_calls"
    assert resp.usage == ir.Usage(prompt_tokens=120, completion_tokens=90, cached_tokens=64) and resp.reasoning_tokens == 50
    kinds = [type(p).__name__ for p in resp.parts]
    assert kinds == ["ReasoningPart", "ToolCallPart", "TextPart", "ToolCallPart", "ToolCallPart"]
    assert resp.parts[0] == ir.ReasoningPart(encrypted="gAAAAABoREAL==", id="rs_68c1", summary=["**Checking weather tools**"])
    assert resp.parts[2].annotations[0]["type"] == "url_citation"
    assert resp.parts[4].name == "mcp__github__get_issue"

    request = R.request_to_ir({"model": "gpt-5", "input": "weather?", "instructions": "Be brief.", "tools": [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
        {"type": "namespace", "name": "mcp__github__", "description": "gh",
         "tools": [{"type": "function", "name": "get_issue"}]}]})
    out = R.response_from_ir(resp, request)
    SDKResponse.model_validate(out)
    assert out["id"] == "resp_68c0ffee" and out["object"] == "response" and out["status"] == "completed"
    assert out["instructions"] == "Be brief." and len(out["tools"]) == 2
    assert out["output"][1] == payload["output"][1]  # builtin item verbatim
    assert out["output"][4]["namespace"] == "mcp__github__" and out["output"][4]["name"] == "get_issue"
    assert out["output"][3]["id"].startswith("fc_") and out["output"][2]["id"].startswith("msg_")
    assert out["usage"]["input_tokens_details"]["cached_tokens"] == 64
    assert out["usage"]["output_tokens_details"]["reasoning_tokens"] == 50
    assert R.response_to_ir(out) == resp


@pytest.mark.parametrize(("reason", "status", "details"), [
    ("stop", "completed", None),
    ("length", "incomplete", {"reason": "max_output_tokens"}),
    ("content_filter", "incomplete", {"reason": "content_filter"}),
    ("error", "failed", None),
])
def test_response_status_mapping(reason: ir.StopReason, status: str, details: Any) -> None:
    resp = ir.Response(id="chatcmpl-xyz", model="gpt-4o", parts=[ir.TextPart("partial")], stop_reason=reason,
                       usage=ir.Usage(prompt_tokens=5, completion_tokens=3, cache_write_tokens=2), created=1)
    out = R.response_from_ir(resp, simple_request())
    SDKResponse.model_validate(out)
    assert out["id"] == "resp_chatcmplxyz" and out["status"] == status and out["incomplete_details"] == details
    assert out["usage"]["input_tokens_details"]["cache_write_tokens"] == 2
    back = R.response_to_ir(out)
    assert back.stop_reason == ("error" if reason == "error" else reason)


def test_refusal_and_empty_output() -> None:
    out = R.response_from_ir(ir.Response(id="resp_1", model="m", refusal="No."), simple_request())
    SDKResponse.model_validate(out)
    assert out["output"][0]["content"] == [{"type": "refusal", "refusal": "No."}]
    assert R.response_to_ir(out).refusal == "No."


def test_anthropic_thinking_survives_a_responses_caller() -> None:
    """Signed thinking shown to a Responses caller comes back (as the caller replays the item)
    with its signature; an OpenAI upstream never receives it."""
    thinking = ir.ReasoningPart(text="Let me think.", signature="EqQBCkYIBxgCKkD")
    redacted = ir.ReasoningPart(encrypted="EmwKAhgBEgy3", redacted=True)
    resp = ir.Response(id="msg_01", model="claude", parts=[thinking, redacted, ir.TextPart("Hi")])
    out = R.response_from_ir(resp, simple_request())
    SDKResponse.model_validate(out)
    assert out["output"][0]["summary"] == [{"type": "summary_text", "text": "Let me think."}]
    follow_up = R.request_to_ir({"model": "claude", "input": [*out["output"], {"role": "user", "content": "more"}]})
    parts = follow_up.messages[0].parts
    assert parts[0].text == "Let me think." and parts[0].signature == "EqQBCkYIBxgCKkD" and parts[0].encrypted is None
    assert parts[1].encrypted == "EmwKAhgBEgy3" and parts[1].redacted
    assert [i["type"] for i in R.request_from_ir(follow_up)["input"]] == ["message", "message"]


# --------------------------------------------------------------------------------------- stream decoder

STREAM = (FIXTURES / "stream_reasoning_text_tool.sse").read_bytes()


def decode(data: bytes, chunk: int | None = None) -> list[ir.StreamEvent]:
    dec = R.StreamDecoder()
    events: list[ir.StreamEvent] = []
    step = chunk or len(data) or 1
    for i in range(0, len(data), step):
        events += dec.feed(data[i:i + step])
    return events + dec.close()


def test_decoder_events() -> None:
    events = decode(STREAM)
    assert events == [
        ir.StreamStart("resp_abc123", "gpt-5-2025-08-07", 1756300000),
        ir.PartStart(0, "reasoning", reasoning_id="rs_1"),
        ir.ReasoningDelta(0, text="**Planning"),
        ir.ReasoningDelta(0, text=" the answer**"),
        ir.ReasoningDelta(0, encrypted="gAAAAABoENC=="),
        ir.PartStop(0),
        ir.PartStart(1, "text"),
        ir.TextDelta(1, "Héllo"),
        ir.TextDelta(1, " wörld"),
        ir.TextDelta(1, " 🌍"),
        ir.PartStop(1),
        ir.PartStart(2, "tool_call", tool_call_id="call_1", tool_name="get_weather"),
        ir.ToolArgsDelta(2, '{"city"'),
        ir.ToolArgsDelta(2, ':"Paris"}'),
        ir.PartStop(2),
        ir.StreamEnd("tool_calls", ir.Usage(prompt_tokens=30, completion_tokens=40, cached_tokens=10), reasoning_tokens=20),
    ]


def test_decoder_chunking_does_not_matter() -> None:
    whole = decode(STREAM)
    assert decode(STREAM, 1) == whole
    assert decode(STREAM.replace(b"\n", b"\r\n"), 7) == whole


def test_decoder_endings() -> None:
    cut = STREAM[: STREAM.index(b"event: response.completed")]
    events = decode(cut)
    assert isinstance(events[-1], ir.StreamError) and sum(isinstance(e, ir.StreamError) for e in events) == 1
    failed = (b'event: response.failed\ndata: {"type":"response.failed","sequence_number":0,"response":'
              b'{"id":"resp_1","model":"m","created_at":1,"status":"failed","output":[],'
              b'"error":{"code":"server_error","message":"boom"}}}\n\n')
    events = decode(failed)
    assert events == [ir.StreamStart("resp_1", "m", 1), ir.StreamError("boom", code="server_error")]
    error = b'event: error\ndata: {"type":"error","sequence_number":3,"code":"rate_limit_exceeded","message":"slow down","param":null}\n\n'
    assert decode(error) == [ir.StreamError("slow down", code="rate_limit_exceeded")]
    assert isinstance(decode(b"event: x\ndata: {oops\n\n")[-1], ir.StreamError)
    incomplete = (b'data: {"type":"response.incomplete","sequence_number":0,"response":{"id":"r","model":"m",'
                  b'"created_at":1,"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]}}\n\n')
    assert decode(incomplete)[-1] == ir.StreamEnd("length")


def test_decoder_without_deltas_uses_done_items() -> None:
    """Some upstreams (proxies, other vendors) send only the added/done items."""
    frames = [
        {"type": "response.created", "response": {"id": "r", "model": "m", "created_at": 1}},
        {"type": "response.output_item.added", "output_index": 0, "item": {
            "type": "function_call", "call_id": "c1", "name": "f", "arguments": ""}},
        {"type": "response.output_item.done", "output_index": 0, "item": {
            "type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"a\":1}"}},
        {"type": "response.output_item.done", "output_index": 1, "item": {
            "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hey"}]}},
        {"type": "response.completed", "response": {"id": "r", "model": "m", "status": "completed", "output": []}},
    ]
    data = b"".join(b"data: " + orjson.dumps(f) + b"\n\n" for f in frames)
    assert decode(data)[1:] == [
        ir.PartStart(0, "tool_call", tool_call_id="c1", tool_name="f"), ir.ToolArgsDelta(0, '{"a":1}'), ir.PartStop(0),
        ir.PartStart(1, "text"), ir.TextDelta(1, "hey"), ir.PartStop(1), ir.StreamEnd("stop"),
    ]


# --------------------------------------------------------------------------------------- stream encoder


def encoder(request: ir.Request | None = None) -> R.StreamEncoder:
    return R.StreamEncoder(request or simple_request(), "resp_test1", "gpt-5", 1756300000)


def encode_all(enc: R.StreamEncoder, events: list[ir.StreamEvent]) -> bytes:
    return b"".join(enc.encode(e) for e in events) + enc.close()


def test_encoder_event_sequence_parses_with_sdk() -> None:
    request = R.request_to_ir({"model": "gpt-5", "input": "hi", "tools": [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
        {"type": "custom", "name": "apply_patch"},
        {"type": "namespace", "name": "crm", "description": "CRM", "tools": [{"type": "function", "name": "lookup"}]}]})
    events: list[ir.StreamEvent] = [
        ir.StreamStart("x", "gpt-5", usage=ir.Usage(prompt_tokens=9)),
        ir.PartStart(0, "reasoning"), ir.ReasoningDelta(0, text="Think"), ir.ReasoningDelta(0, text="ing"),
        ir.ReasoningDelta(0, signature="sig"), ir.PartStop(0),
        ir.PartStart(1, "text"), ir.TextDelta(1, "Hel"), ir.TextDelta(1, "lo"), ir.PartStop(1),
        ir.PartStart(2, "tool_call", tool_call_id="call_1", tool_name="get_weather"),
        ir.ToolArgsDelta(2, '{"city":'), ir.ToolArgsDelta(2, '"Paris"}'), ir.PartStop(2),
        ir.PartStart(3, "tool_call", tool_call_id="call_2", tool_name="apply_patch"), ir.ToolArgsDelta(3, "*** Begin"),
        ir.PartStart(4, "tool_call", tool_call_id="call_3", tool_name="crm__lookup"), ir.ToolArgsDelta(4, "{}"),
        ir.StreamEnd("tool_calls", ir.Usage(prompt_tokens=9, completion_tokens=7), reasoning_tokens=3),
    ]
    out = sse_events(encode_all(encoder(request), events))
    sdk_check(out)
    names = [name for name, _ in out]
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[2:5] == ["response.output_item.added", "response.reasoning_summary_part.added",
                          "response.reasoning_summary_text.delta"]
    assert names.count("response.output_text.delta") == 2 and names.count("response.function_call_arguments.delta") == 3
    assert "response.custom_tool_call_input.delta" in names and names[-1] == "response.completed"
    text_done = [p for n, p in out if n == "response.output_text.done"]
    assert text_done[0]["text"] == "Hello"
    final = SDKResponse.model_validate(out[-1][1]["response"])
    assert final.id == "resp_test1" and final.status == "completed" and final.output_text == "Hello"
    assert [o.type for o in final.output] == ["reasoning", "message", "function_call", "custom_tool_call", "function_call"]
    assert final.output[2].arguments == '{"city":"Paris"}' and final.output[2].call_id == "call_1"
    assert final.output[3].input == "*** Begin"
    assert (final.output[4].namespace, final.output[4].name) == ("crm", "lookup")
    assert final.usage is not None and final.usage.input_tokens == 9 and final.usage.output_tokens_details.reasoning_tokens == 3
    # The reasoning item carries the Anthropic signature back to us when the caller replays it.
    replay = R.request_to_ir({"model": "m", "input": [out[-1][1]["response"]["output"][0]]})
    assert replay.messages[0].parts[0].signature == "sig" and replay.messages[0].parts[0].text == "Thinking"


def test_encoder_incomplete_failed_and_error() -> None:
    enc = encoder()
    out = sse_events(encode_all(enc, [ir.StreamStart("x", "m"), ir.PartStart(0, "text"), ir.TextDelta(0, "cut"),
                                      ir.StreamEnd("length", ir.Usage(prompt_tokens=1, completion_tokens=1))]))
    sdk_check(out)
    assert out[-1][0] == "response.incomplete"
    assert out[-1][1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert out[-1][1]["response"]["output"][0]["status"] == "incomplete"
    assert enc.encode(ir.TextDelta(0, "late")) == b""  # nothing after the end

    out = sse_events(encode_all(encoder(), [ir.TextDelta(0, "no start"), ir.StreamError("upstream died")]))
    sdk_check(out)
    assert [n for n, _ in out][-1] == "response.failed"
    assert out[-1][1]["response"]["error"] == {"code": "server_error", "message": "upstream died"}

    enc = encoder()
    data = enc.encode(ir.StreamStart("x", "m")) + enc.error("Upstream timed out", "timeout", "upstream_timeout")
    out = sse_events(data)
    sdk_check(out)
    assert out[-1][1] == {"type": "error", "sequence_number": 2, "code": "upstream_timeout",
                          "message": "Upstream timed out", "param": None}


def test_encoder_caps_what_it_keeps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(responses_stream, "MAX_KEPT_BYTES", 1000)
    enc = encoder()
    chunks = [ir.TextDelta(0, "é" * 100) for _ in range(20)]  # 4000 bytes streamed
    out = sse_events(encode_all(enc, [ir.StreamStart("x", "m"), ir.PartStart(0, "text"), *chunks, ir.StreamEnd()]))
    sdk_check(out)
    deltas = "".join(p["delta"] for n, p in out if n == "response.output_text.delta")
    assert deltas == "é" * 2000  # the caller still gets everything
    final = out[-1][1]["response"]
    assert final["output"][0]["content"][0]["text"] == "é" * 500
    assert final["metadata"] == {"truncated": "true"}


def test_encoder_default_cap_is_4_mib() -> None:
    assert responses_stream.MAX_KEPT_BYTES == 4 * 1024 * 1024


def test_encode_then_decode_round_trip() -> None:
    events = decode(STREAM)
    enc = encoder(R.request_to_ir({"model": "gpt-5", "input": "x", "tools": [{"type": "function", "name": "get_weather"}]}))
    again = decode(encode_all(enc, events), 5)
    assert again[0] == ir.StreamStart("resp_test1", "gpt-5", 1756300000)
    assert again[1:] == events[1:]


def test_encoder_output_drives_the_sdk_stream_helper() -> None:
    """The SDK's `responses.stream()` helper accumulates the events and cross-checks item
    identities against response.completed: our stream must satisfy it end to end."""
    import httpx2 as httpx  # the HTTP client this openai SDK release depends on
    from openai import OpenAI

    request = R.request_to_ir({"model": "gpt-5", "input": "hi", "stream": True, "tools": [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}]})
    events: list[ir.StreamEvent] = [
        ir.StreamStart("x", "gpt-5"), ir.PartStart(0, "reasoning", reasoning_id="rs_given"),
        ir.ReasoningDelta(0, text="plan"), ir.ReasoningDelta(0, encrypted="gAAAAenc"), ir.PartStop(0),
        ir.PartStart(1, "text"), ir.TextDelta(1, "Hello "), ir.TextDelta(1, "world"), ir.PartStop(1),
        ir.PartStart(2, "tool_call", tool_call_id="call_1", tool_name="get_weather"), ir.ToolArgsDelta(2, "{}"),
        ir.StreamEnd("tool_calls", ir.Usage(prompt_tokens=3, completion_tokens=4)),
    ]
    body = encode_all(encoder(request), events)

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    client = OpenAI(api_key="k", base_url="http://test/v1", http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    with client.responses.stream(model="gpt-5", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.done" in kinds
    assert final.output_text == "Hello world"
    assert [o.type for o in final.output] == ["reasoning", "message", "function_call"]
    assert final.output[0].id == "rs_given" and final.output[0].encrypted_content == "gAAAAenc"
    assert final.usage is not None and final.usage.total_tokens == 7


# --------------------------------------------------------------------------------------- against the fake upstream


@pytest.fixture(scope="module")
def fake_upstream() -> Any:
    from fakeprovider.process import start_fake_provider

    with start_fake_provider() as provider:
        yield provider


def upstream(provider: Any, body: dict[str, Any]) -> bytes:
    import urllib.request

    req = urllib.request.Request(provider.url("/v1/responses"), data=orjson.dumps(body), method="POST",
                                 headers={"Authorization": "Bearer k", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read()


def test_request_from_ir_is_accepted_and_replies_decode(fake_upstream: Any) -> None:
    """The Codex request, converted IR -> Responses, passes the fake's validation; its replies
    (stream and not) decode to the same IR."""
    req = R.request_to_ir(fixture("codex_request.json"))
    # The fake (like OpenAI) only accepts encrypted reasoning it issued: use one it issues.
    issued = orjson.loads(upstream(fake_upstream, {"model": "m", "input": "x", "reasoning": {"effort": "low"},
                                                   "include": ["reasoning.encrypted_content"]}))["output"][0]
    req.messages[2].parts[0].encrypted = issued["encrypted_content"]
    body = R.request_from_ir(req)
    body["stream"] = False
    resp = R.response_to_ir(orjson.loads(upstream(fake_upstream, body)))
    assert [type(p).__name__ for p in resp.parts] == ["ReasoningPart", "ToolCallPart"]  # tools given: it calls one
    assert resp.parts[0].encrypted and resp.parts[0].summary and resp.usage.prompt_tokens > 0
    assert resp.parts[1].name == "shell" and resp.stop_reason == "tool_calls"

    body["stream"] = True
    events = decode(upstream(fake_upstream, body), 3)
    assert isinstance(events[0], ir.StreamStart) and events[0].id.startswith("resp_fake_")
    end = events[-1]
    assert isinstance(end, ir.StreamEnd) and end.usage is not None
    assert end.usage.prompt_tokens == resp.usage.prompt_tokens and end.reasoning_tokens == resp.reasoning_tokens
    args = "".join(e.arguments for e in events if isinstance(e, ir.ToolArgsDelta))
    assert args == resp.parts[1].arguments and end.stop_reason == "tool_calls"
    encrypted = [e.encrypted for e in events if isinstance(e, ir.ReasoningDelta) and e.encrypted]
    assert encrypted == [resp.parts[0].encrypted]


def test_fake_tool_call_stream_decodes(fake_upstream: Any) -> None:
    body = {"model": "m", "input": "weather?", "stream": True, "tool_choice": "required",
            "tools": [{"type": "function", "name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}}},
                      {"type": "namespace", "name": "crm", "description": "CRM",
                       "tools": [{"type": "function", "name": "lookup"}]}]}
    events = decode(upstream(fake_upstream, body))
    starts = [e for e in events if isinstance(e, ir.PartStart)]
    assert [(s.tool_call_id, s.tool_name) for s in starts] == [("call_fake_0", "get_weather"), ("call_fake_1", "crm__lookup")]
    args = "".join(e.arguments for e in events if isinstance(e, ir.ToolArgsDelta) and e.index == starts[0].index)
    assert args == '{"city":"example"}'
    assert isinstance(events[-1], ir.StreamEnd) and events[-1].stop_reason == "tool_calls"


def test_custom_tool_emulated_as_function_is_unwrapped() -> None:
    """An upstream without custom tools (Anthropic) answers a custom tool with `{"input": text}`:
    the Responses caller gets the bare text, streamed or not."""
    request = R.request_to_ir({"model": "m", "input": "patch it", "tools": [{"type": "custom", "name": "apply_patch"}]})
    out = sse_events(encode_all(encoder(request), [
        ir.StreamStart("x", "m"), ir.PartStart(0, "tool_call", tool_call_id="toolu_1", tool_name="apply_patch"),
        ir.ToolArgsDelta(0, '{"input": "*** Begin'), ir.ToolArgsDelta(0, ' Patch\\n"}'), ir.PartStop(0),
        ir.StreamEnd("tool_calls")]))
    sdk_check(out)
    deltas = [p["delta"] for n, p in out if n == "response.custom_tool_call_input.delta"]
    assert deltas == ["*** Begin Patch\n"]
    assert out[-1][1]["response"]["output"][0]["input"] == "*** Begin Patch\n"
    resp = ir.Response(id="msg_1", model="m", parts=[ir.ToolCallPart("toolu_1", "apply_patch", '{"input":"raw text"}')],
                       stop_reason="tool_calls")
    item = R.response_from_ir(resp, request)["output"][0]
    assert item["type"] == "custom_tool_call" and item["input"] == "raw text"
    # A native custom call (Chat or Responses upstream) streams as it comes.
    out = sse_events(encode_all(encoder(request), [
        ir.PartStart(0, "tool_call", tool_call_id="c", tool_name="apply_patch"), ir.ToolArgsDelta(0, "*** Begin"),
        ir.ToolArgsDelta(0, " Patch"), ir.StreamEnd("tool_calls")]))
    assert [p["delta"] for n, p in out if n == "response.custom_tool_call_input.delta"] == ["*** Begin", " Patch"]


def test_tools_from_other_formats_are_reshaped() -> None:
    """Chat keeps its nested tool items in `raw`: a Responses upstream must get flat ones."""
    chat_function = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    chat_custom = {"type": "custom", "custom": {"name": "g", "format": {"type": "text"}}}
    tools = [ir.ToolDef("f", parameters={"type": "object"}, raw=chat_function),
             ir.ToolDef("g", "free text", kind="custom", raw=chat_custom)]
    assert R.request_from_ir(ir.Request(model="m", tools=tools))["tools"] == [
        {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False},
        {"type": "custom", "name": "g", "description": "free text", "format": {"type": "text"}},
    ]
