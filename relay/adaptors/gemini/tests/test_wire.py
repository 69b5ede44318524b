"""IR <-> Gemini JSON mapping, schema cleaning, embeddings and the adaptor's URLs/headers.

Fixtures under fixtures/ follow the response examples of https://ai.google.dev/api/generate-content.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from relay import ir
from relay.adaptors import get_adaptor
from relay.adaptors.gemini.adaptor import GeminiAdaptor
from relay.adaptors.gemini.schema import clean_schema
from relay.adaptors.gemini.wire import DUMMY_THOUGHT_SIGNATURE, request_from_ir, response_to_ir
from relay.snapshot import ChannelEntry

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def channel(base_url: str = "https://generativelanguage.googleapis.com", **config: object) -> ChannelEntry:
    return ChannelEntry(
        id=1, name="g", type=24, protocol="gemini", base_url=base_url, key="AIza-test",
        model_mapping={}, config=dict(config), priority=0, weight=1, enabled=True,
    )


def user(*parts: ir.Part) -> ir.Message:
    return ir.Message(role="user", parts=list(parts))


def encode(request: ir.Request, **kw: Any) -> dict[str, Any]:
    return request_from_ir(request, **kw)


# --------------------------------------------------------------------------------- adaptor


def test_registered_and_urls() -> None:
    adaptor = get_adaptor("gemini")
    assert isinstance(adaptor, GeminiAdaptor)
    assert adaptor.native_format is None and adaptor.supports_embeddings
    assert adaptor.native_formats(channel()) == frozenset()
    base = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
    assert adaptor.build_url(channel(), "chat", model="gemini-2.5-flash", stream=False) == base + ":generateContent"
    assert adaptor.build_url(channel(), "chat", model="gemini-2.5-flash", stream=True) == (
        base + ":streamGenerateContent?alt=sse"
    )
    assert adaptor.build_url(channel(), "embeddings", model="models/text-embedding-004", stream=False) == (
        "https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:batchEmbedContents"
    )
    # A base already ending in a version is used as is; api_version picks v1 for bare hosts.
    assert adaptor.build_url(channel("https://proxy.example/gemini/v1"), "chat", model="m", stream=False) == (
        "https://proxy.example/gemini/v1/models/m:generateContent"
    )
    assert adaptor.build_url(channel("https://proxy.example/v1beta"), "chat", model="m", stream=False).startswith(
        "https://proxy.example/v1beta/models/m:"
    )
    assert adaptor.build_url(channel(api_version="v1"), "chat", model="m", stream=False) == (
        "https://generativelanguage.googleapis.com/v1/models/m:generateContent"
    )
    assert adaptor.build_url(channel(api_version="../x"), "chat", model="m", stream=False).startswith(
        "https://generativelanguage.googleapis.com/v1beta/"
    )
    assert adaptor.build_headers(channel()) == {"x-goog-api-key": "AIza-test", "Content-Type": "application/json"}


# --------------------------------------------------------------------------------- request


def test_system_roles_merging_and_mid_conversation_system() -> None:
    request = ir.Request(
        model="m",
        system=[ir.TextPart("Be brief."), ir.TextPart("Answer in French.")],
        messages=[
            user(ir.TextPart("Hi")),
            user(ir.TextPart("there")),
            ir.Message(role="assistant", parts=[ir.TextPart("Bonjour")]),
            ir.Message(role="developer", parts=[ir.TextPart("Now use English.")]),
            user(ir.TextPart("How are you?")),
        ],
    )
    body = encode(request)
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief.\nAnswer in French."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}, {"text": "there"}]},
        {"role": "model", "parts": [{"text": "Bonjour"}]},
        {"role": "user", "parts": [{"text": "Now use English."}, {"text": "How are you?"}]},
    ]
    assert "tools" not in body and "toolConfig" not in body and "generationConfig" not in body


def test_safety_settings_default_and_channel_config() -> None:
    request = ir.Request(model="m", messages=[user(ir.TextPart("x"))])
    default = encode(request)["safetySettings"]
    assert {s["threshold"] for s in default} == {"BLOCK_NONE"} and len(default) == 4
    assert "HARM_CATEGORY_DANGEROUS_CONTENT" in {s["category"] for s in default}
    adaptor = GeminiAdaptor()
    strict = adaptor.encode_request(request, model="m", channel=channel(safety_setting="BLOCK_ONLY_HIGH"))
    assert {s["threshold"] for s in strict["safetySettings"]} == {"BLOCK_ONLY_HIGH"}
    custom = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}]
    assert adaptor.encode_request(request, model="m", channel=channel(safety_settings=custom))["safetySettings"] == custom


def test_tool_calls_results_and_malformed_arguments() -> None:
    request = ir.Request(
        model="m",
        messages=[
            user(ir.TextPart("Weather in Paris and Rome?")),
            ir.Message(role="assistant", parts=[
                ir.TextPart("Checking."),
                ir.ToolCallPart(id="call_a", name="get_weather", arguments='{"city": "Paris"}'),
                ir.ToolCallPart(id="call_b", name="get_weather", arguments='{"city": "Rome"'),  # malformed
            ]),
            ir.Message(role="tool", parts=[
                ir.ToolResultPart(call_id="call_a", content=[ir.TextPart("18C"), ir.TextPart("sunny")]),
            ]),
            ir.Message(role="tool", parts=[
                ir.ToolResultPart(call_id="call_b", content=[ir.TextPart("no data")], is_error=True),
            ]),
        ],
    )
    contents = encode(request)["contents"]
    assert contents[1] == {"role": "model", "parts": [
        {"text": "Checking."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": DUMMY_THOUGHT_SIGNATURE},
        {"functionCall": {"name": "get_weather", "args": {}}},
    ]}
    assert contents[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"content": "18C\nsunny"}}},
        {"functionResponse": {"name": "get_weather", "response": {"error": "no data"}}},
    ]}
    assert len(contents) == 3


def test_builtin_calls_dropped_custom_calls_wrapped() -> None:
    request = ir.Request(model="m", messages=[
        user(ir.TextPart("q")),
        ir.Message(role="assistant", parts=[
            ir.ToolCallPart(id="ws_1", name="web_search", kind="builtin", raw={"type": "web_search_call"}),
            ir.ToolCallPart(id="ct_1", name="apply_patch", arguments="*** Begin Patch", kind="custom"),
        ]),
    ])
    assert encode(request)["contents"][1]["parts"] == [
        {"functionCall": {"name": "apply_patch", "args": {"input": "*** Begin Patch"}}, "thoughtSignature": DUMMY_THOUGHT_SIGNATURE},
    ]


def test_thought_signature_reattached_to_following_call() -> None:
    """A Gemini signature (from decode) goes back on the part it came with; thought text is dropped."""
    request = ir.Request(model="m", messages=[
        user(ir.TextPart("q")),
        ir.Message(role="assistant", parts=[
            ir.ReasoningPart(text="I should call the tool"),
            ir.ReasoningPart(signature="SIG1"),
            ir.ToolCallPart(id="call_1", name="f", arguments="{}"),
            ir.ToolCallPart(id="call_2", name="g", arguments="{}"),
        ]),
        ir.Message(role="tool", parts=[ir.ToolResultPart("call_1", [ir.TextPart("1")]), ir.ToolResultPart("call_2", [])]),
        ir.Message(role="assistant", parts=[ir.TextPart("Done."), ir.ReasoningPart(signature="SIG2")]),
    ])
    contents = encode(request)["contents"]
    assert contents[1]["parts"] == [
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "SIG1"},
        {"functionCall": {"name": "g", "args": {}}},
    ]
    assert contents[2]["parts"][1] == {"functionResponse": {"name": "g", "response": {"content": ""}}}
    # Gemini 3 signs the last part of a text answer: a trailing signature goes back on it.
    assert contents[3]["parts"] == [{"text": "Done.", "thoughtSignature": "SIG2"}]


def test_response_round_trip_keeps_signatures() -> None:
    response = response_to_ir(fixture("function_call_response.json"))
    request = ir.Request(model="m", messages=[user(ir.TextPart("q")), ir.Message(role="assistant", parts=response.parts)])
    parts = encode(request)["contents"][1]["parts"]
    assert parts == [
        {"functionCall": {"name": "get_weather", "args": {"location": "Paris", "unit": "celsius"}}, "thoughtSignature": "CiQB0e2Kb7sig1"},
        {"functionCall": {"name": "get_time", "args": {"city": "Paris"}}},
    ]


def test_images_files_and_audio() -> None:
    request = ir.Request(model="m", messages=[user(
        ir.TextPart("Look"),
        ir.ImagePart(url="data:image/png;base64,iVBORw0K"),
        ir.ImagePart(data="R0lGOD", media_type="image/gif"),
        ir.ImagePart(url="https://example.com/cat.webp?size=2"),
        ir.ImagePart(url="https://example.com/photo"),
        ir.FilePart(data="JVBERi0", filename="report.pdf"),
        ir.FilePart(url="data:text/plain,hello%20world"),
        ir.FilePart(file_id="files/abc123", media_type="application/pdf"),
        ir.AudioPart(data="UklGR", format="wav"),
    )])
    parts = encode(request)["contents"][0]["parts"]
    assert parts == [
        {"text": "Look"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
        {"inlineData": {"mimeType": "image/gif", "data": "R0lGOD"}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?size=2"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0"}},
        {"inlineData": {"mimeType": "text/plain", "data": base64.b64encode(b"hello world").decode()}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGR"}},
    ]
    with pytest.raises(ir.ConversionError):
        encode(ir.Request(model="m", messages=[user(ir.FilePart(file_id="file-openai"))]))
    with pytest.raises(ir.ConversionError):
        encode(ir.Request(model="m", messages=[user(ir.ImagePart(url="data:nonsense"))]))


def test_tool_result_images_follow_the_responses() -> None:
    request = ir.Request(model="m", messages=[
        ir.Message(role="assistant", parts=[ir.ToolCallPart(id="c", name="shot", arguments="")]),
        ir.Message(role="tool", parts=[ir.ToolResultPart("c", [ir.TextPart("ok"), ir.ImagePart(data="AAA", media_type="image/png")])]),
    ])
    assert encode(request)["contents"][1]["parts"] == [
        {"functionResponse": {"name": "shot", "response": {"content": "ok"}}},
        {"inlineData": {"mimeType": "image/png", "data": "AAA"}},
    ]


WEATHER_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {"city": {"type": "string", "default": "Paris"}},
    "required": ["city", "ghost"],
}


def test_tools_and_tool_choice() -> None:
    tools = [
        ir.ToolDef(name="get_weather", description="Weather", parameters=WEATHER_SCHEMA, strict=True),
        ir.ToolDef(name="now", parameters={"type": "object", "properties": {}}),
        ir.ToolDef(name="web_search", kind="builtin", builtin_type="web_search_preview"),
        ir.ToolDef(name="code_interpreter", kind="builtin", builtin_type="code_interpreter"),
        ir.ToolDef(name="freeform", kind="custom"),
    ]
    request = ir.Request(model="m", messages=[user(ir.TextPart("x"))], tools=tools)
    body = encode(request)
    assert body["tools"] == [
        {"functionDeclarations": [
            {"name": "get_weather", "description": "Weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
            }},
            {"name": "now"},
        ]},
        {"googleSearch": {}},
    ]
    assert "toolConfig" not in body
    cases = [
        (ir.ToolChoice("auto"), {"mode": "AUTO"}),
        (ir.ToolChoice("none"), {"mode": "NONE"}),
        (ir.ToolChoice("required"), {"mode": "ANY"}),
        (ir.ToolChoice("tool", "now"), {"mode": "ANY", "allowedFunctionNames": ["now"]}),
        (ir.ToolChoice("tool", "freeform"), {"mode": "AUTO"}),  # not declared to Gemini
    ]
    for choice, expected in cases:
        request.tool_choice = choice
        assert encode(request)["toolConfig"] == {"functionCallingConfig": expected}


def test_generation_config_and_response_format() -> None:
    request = ir.Request(
        model="m", messages=[user(ir.TextPart("x"))], max_output_tokens=256, temperature=0.2, top_p=0.9,
        top_k=40, stop=["END"], n=1, seed=7,
        response_format=ir.ResponseFormat(type="json_schema", name="r", schema={
            "type": "object", "properties": {"n": {"const": 3}, "tag": {"type": ["string", "null"]}},
        }),
    )
    assert encode(request)["generationConfig"] == {
        "maxOutputTokens": 256, "temperature": 0.2, "topP": 0.9, "topK": 40, "seed": 7,
        "stopSequences": ["END"], "candidateCount": 1,
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {
            "n": {"description": "Allowed values: 3."}, "tag": {"type": "string", "nullable": True},
        }},
    }
    request.response_format = ir.ResponseFormat(type="json_object")
    config = encode(request)["generationConfig"]
    assert config["responseMimeType"] == "application/json" and "responseSchema" not in config
    request.response_format = ir.ResponseFormat(type="text")
    assert "responseMimeType" not in encode(request)["generationConfig"]


@pytest.mark.parametrize(("reasoning", "expected"), [
    (ir.Reasoning(budget_tokens=3000), {"thinkingBudget": 3000, "includeThoughts": True}),
    (ir.Reasoning(budget_tokens=32000), {"thinkingBudget": 24576, "includeThoughts": True}),
    (ir.Reasoning(effort="low"), {"thinkingBudget": 1024, "includeThoughts": True}),
    (ir.Reasoning(effort="medium"), {"thinkingBudget": 8192, "includeThoughts": True}),
    (ir.Reasoning(effort="high"), {"thinkingBudget": 24576, "includeThoughts": True}),
    (ir.Reasoning(enabled=True), {"thinkingBudget": -1, "includeThoughts": True}),
    (ir.Reasoning(enabled=False, budget_tokens=5000), {"thinkingBudget": 0}),
    (ir.Reasoning(), None),
])
def test_thinking_config(reasoning: ir.Reasoning, expected: dict[str, Any] | None) -> None:
    body = encode(ir.Request(model="m", messages=[user(ir.TextPart("x"))], reasoning=reasoning))
    assert body.get("generationConfig", {}).get("thinkingConfig") == expected


# --------------------------------------------------------------------------------- schema


def test_clean_schema_refs_nullable_and_unsupported_keywords() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "strict": True,
        "additionalProperties": False,
        "$defs": {"Item": {"type": "object", "properties": {"sku": {"type": "string", "examples": ["A1"]}}, "required": ["sku"]}},
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 1},
            "note": {"anyOf": [{"type": "string", "maxLength": 10}, {"type": "null"}], "default": None},
            "kind": {"type": "string", "enum": ["a", "b"]},
            "mode": {"const": "fast"},
            "when": {"type": "string", "format": "date-time"},
            "mail": {"type": "string", "format": "email"},
            "ratio": {"type": "number", "format": "double", "minimum": 0, "exclusiveMaximum": 1},
            "id": {"type": ["integer", "string"]},
            "level": {"type": "integer", "enum": [1, 2, None]},
            "both": {"allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]}, {"properties": {"b": {"type": "boolean"}}}]},
            "choice": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["items"],
    }
    original = json.dumps(schema, sort_keys=True)
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {
            "items": {"type": "array", "minItems": 1, "items": {
                "type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"],
            }},
            "note": {"type": "string", "maxLength": 10, "nullable": True},
            "kind": {"type": "string", "enum": ["a", "b"]},
            "mode": {"type": "string", "enum": ["fast"]},
            "when": {"type": "string", "format": "date-time"},
            "mail": {"type": "string"},
            "ratio": {"type": "number", "format": "double", "minimum": 0},
            "id": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "level": {"type": "integer", "nullable": True, "description": "Allowed values: 1, 2."},
            "both": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}}, "required": ["a"]},
            "choice": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["items"],
    }
    assert json.dumps(schema, sort_keys=True) == original  # input untouched


def test_clean_schema_recursion_and_odd_input() -> None:
    tree = {"type": "object", "properties": {"child": {"$ref": "#"}, "name": {"type": "string"}}}
    cleaned = clean_schema(tree)
    depth = 0
    node = cleaned
    while "properties" in node:
        node = node["properties"]["child"]
        depth += 1
    assert 5 < depth < 40 and node == {"type": "object"}
    assert clean_schema("not a schema") == {}
    assert clean_schema({"type": "null"}) == {"nullable": True}
    assert clean_schema({"$ref": "#/definitions/Missing", "description": "d"}) == {"type": "object", "description": "d"}
    assert clean_schema({"type": "array", "items": [{"type": "string"}]}) == {"type": "array", "items": {"type": "string"}}
    assert clean_schema({"type": "OBJECT", "properties": {"x": {"type": "STRING"}}}) == {
        "type": "object", "properties": {"x": {"type": "string"}},
    }


# --------------------------------------------------------------------------------- response


def test_decode_text_response_and_usage() -> None:
    response = GeminiAdaptor().decode_response((FIXTURES / "text_response.json").read_bytes())
    assert response.id == "mOj4aOiMA9Xq-8YP3a-x0Qo" and response.model == "gemini-2.5-flash"
    assert [type(p) for p in response.parts] == [ir.TextPart]
    assert response.parts[0].text == "AI learns patterns from data to make predictions."
    assert response.stop_reason == "stop"
    assert response.usage == ir.Usage(prompt_tokens=120, completion_tokens=29, cached_tokens=100)
    assert response.reasoning_tokens == 20


def test_decode_function_calls_with_signature() -> None:
    response = response_to_ir(fixture("function_call_response.json"))
    sig, first, second = response.parts
    assert sig == ir.ReasoningPart(signature="CiQB0e2Kb7sig1")
    assert first == ir.ToolCallPart(id="call_abc123_0", name="get_weather", arguments='{"location":"Paris","unit":"celsius"}')
    assert second.id == "call_abc123_1" and second.name == "get_time" and json.loads(second.arguments) == {"city": "Paris"}
    assert response.stop_reason == "tool_calls"
    assert response.usage.completion_tokens == 80 and response.reasoning_tokens == 50
    again = response_to_ir(fixture("function_call_response.json"))
    assert [p.id for p in again.parts if isinstance(p, ir.ToolCallPart)] == ["call_abc123_0", "call_abc123_1"]


def test_decode_thoughts_and_finish_reasons() -> None:
    response = response_to_ir(fixture("thinking_response.json"), model="gemini-fallback")
    assert response.parts == [
        ir.ReasoningPart(text="**Weighing the options**\nThe user wants a short answer.", signature="CiQBsigThought"),
        ir.TextPart(text="The answer is 42."),
    ]
    assert response.stop_reason == "length" and response.id.startswith("gemini-")
    for reason, expected in [("SAFETY", "content_filter"), ("RECITATION", "content_filter"), ("BLOCKLIST", "content_filter"),
                             ("PROHIBITED_CONTENT", "content_filter"), ("MAX_TOKENS", "length"), ("OTHER", "stop")]:
        payload = {"candidates": [{"content": {"parts": []}, "finishReason": reason}]}
        assert response_to_ir(payload).stop_reason == expected


def test_decode_blocked_prompt_and_bad_input() -> None:
    response = response_to_ir(fixture("blocked_prompt.json"), model="gemini-2.5-flash")
    assert response.parts == [] and response.stop_reason == "content_filter"
    assert response.usage.prompt_tokens == 12
    with pytest.raises(ir.ConversionError):
        GeminiAdaptor().decode_response(b"not json")
    with pytest.raises(ir.ConversionError):
        response_to_ir([1, 2])


# --------------------------------------------------------------------------------- embeddings


def test_embeddings_request_and_response() -> None:
    adaptor = GeminiAdaptor()
    payload = {"model": "text-embedding-004", "input": ["hello world", "bye"], "dimensions": 3}
    assert adaptor.encode_embeddings(payload, model="text-embedding-004") == {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello world"}]}, "outputDimensionality": 3},
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "bye"}]}, "outputDimensionality": 3},
    ]}
    raw = (FIXTURES / "embeddings_response.json").read_bytes()
    out = adaptor.decode_embeddings(raw, model="text-embedding-004", payload=payload)
    assert out == {
        "object": "list", "model": "text-embedding-004",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.25, -0.5, 0.125]},
            {"object": "embedding", "index": 1, "embedding": [1.0, 0.0, -1.0]},
        ],
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    b64 = adaptor.decode_embeddings(raw, model="m", payload={**payload, "encoding_format": "base64"})
    first = base64.b64decode(b64["data"][0]["embedding"])
    assert struct.unpack("<3f", first) == (0.25, -0.5, 0.125)
    with pytest.raises(ir.ConversionError):
        adaptor.encode_embeddings({"input": [[1, 2, 3]]}, model="m")
    with pytest.raises(ir.ConversionError):
        adaptor.decode_embeddings(b'{"error": "x"}', model="m")
