"""The fake provider's Bedrock mode, end to end: a real child process over real HTTP.

Requests are signed with botocore's SigV4 signer and streams decoded with botocore's own
event-stream parser (the one boto3 uses), so the framing and CRCs are proven real.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from fakeprovider.process import FakeProvider, start_fake_provider
from fakeprovider.tokens import count_chat_prompt_tokens, count_tokens

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
NOVA = "amazon.nova-pro-v1:0"
HELLO = "Hello there, how are you today?"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}
CLAUDE_TOOLS = [
    {"name": "get_weather", "description": "Weather for a city", "input_schema": SCHEMA},
    {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
]
CONVERSE_TOOLS = {"tools": [
    {"toolSpec": {"name": "get_weather", "description": "Weather for a city", "inputSchema": {"json": SCHEMA}}},
    {"toolSpec": {"name": "get_time", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
]}


@pytest.fixture(scope="module")
def fp() -> Iterator[FakeProvider]:
    with start_fake_provider() as provider:
        yield provider


def call(fp: FakeProvider, path: str, body: Any, *, scenario: str | None = None, sign: bool = True,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    url = fp.url(path, scenario)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    if headers is None:
        headers = {"Content-Type": "application/json"}
        if sign:
            request = AWSRequest(method="POST", url=url, data=data, headers=headers)
            SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), "bedrock", "us-east-1").add_auth(request)
            headers = dict(request.headers.items())
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            try:
                return resp.status, dict(resp.headers), resp.read()
            except http.client.IncompleteRead as exc:  # the "cut" scenario hangs up mid-body
                return resp.status, dict(resp.headers), exc.partial
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def claude_body(**kw: Any) -> dict[str, Any]:
    return {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200,
            "messages": [{"role": "user", "content": HELLO}], **kw}


def converse_body(**kw: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"text": HELLO}]}], **kw}


def frames(raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return [(m.headers, m.payload) for m in buffer]


def claude_events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for headers, payload in frames(raw):
        assert headers == {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
        chunk = json.loads(payload)
        assert set(chunk) == {"bytes", "p"}
        out.append(json.loads(base64.b64decode(chunk["bytes"])))
    return out


def converse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for headers, payload in frames(raw):
        assert headers[":message-type"] == "event" and headers[":content-type"] == "application/json"
        data = json.loads(payload)
        data.pop("p")  # Bedrock's padding
        out.append((headers[":event-type"], data))
    return out


PROMPT = count_chat_prompt_tokens([{"role": "user", "content": HELLO}])
REPLY = "Fake reply to: " + HELLO


# --------------------------------------------------------------------------- auth


def test_auth_is_required_and_well_formed(fp: FakeProvider) -> None:
    path = f"/model/{NOVA}/converse"
    for headers in (
        {"Content-Type": "application/json"},
        {"Authorization": "Bearer sk-test"},
        {"Authorization": "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/bedrock/aws4_request, "
                          "SignedHeaders=content-type;x-amz-date, Signature=" + "0" * 64, "X-Amz-Date": "20240101T000000Z"},
    ):
        status, got, raw = call(fp, path, converse_body(), headers=headers)
        assert status == 403
        assert got["x-amzn-ErrorType"].startswith("UnrecognizedClientException:")
        assert "security token" in json.loads(raw)["message"]
    no_date = {"Authorization": "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/bedrock/aws4_request, "
                                "SignedHeaders=host;x-amz-date, Signature=" + "a" * 64}
    status, got, _ = call(fp, path, converse_body(), headers=no_date)
    assert status == 403 and got["x-amzn-ErrorType"].startswith("IncompleteSignatureException")


# --------------------------------------------------------------------------- Claude (InvokeModel)


def test_claude_invoke(fp: FakeProvider) -> None:
    status, headers, raw = call(fp, f"/model/{CLAUDE}/invoke", claude_body(system="Be brief."))
    assert status == 200, raw
    body = json.loads(raw)
    prompt = count_chat_prompt_tokens([{"role": "system", "content": "Be brief."}, {"role": "user", "content": HELLO}])
    assert body == {
        "id": body["id"], "type": "message", "role": "assistant", "model": "claude-3-5-sonnet-20240620",
        "content": [{"type": "text", "text": REPLY}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": prompt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                  "output_tokens": count_tokens(REPLY)},
    }
    assert body["id"].startswith("msg_bdrk_")
    assert headers["X-Amzn-Bedrock-Input-Token-Count"] == str(prompt)
    assert fp.requests()[-1]["body"]["anthropic_version"] == "bedrock-2023-05-31"


@pytest.mark.parametrize(("change", "message"), [
    ({"stream": True}, "extraneous key [stream] is not permitted"),
    ({"model": CLAUDE}, "extraneous key [model] is not permitted"),
    ({"anthropic_version": "2023-06-01"}, "anthropic_version"),
    ({"max_tokens": None}, "max_tokens"),
    ({"metadata": {"user_id": "u", "tags": ["x"]}}, "metadata"),
])
def test_claude_invoke_validation(fp: FakeProvider, change: dict[str, Any], message: str) -> None:
    body = {k: v for k, v in {**claude_body(), **change}.items() if v is not None}
    status, headers, raw = call(fp, f"/model/{CLAUDE}/invoke", body)
    assert status == 400 and headers["x-amzn-ErrorType"].startswith("ValidationException:")
    assert message in json.loads(raw)["message"]


def test_claude_stream(fp: FakeProvider) -> None:
    status, headers, raw = call(fp, f"/model/{CLAUDE}/invoke-with-response-stream", claude_body())
    assert status == 200
    assert headers["Content-Type"] == "application/vnd.amazon.eventstream"
    events = claude_events(raw)
    assert [e["type"] for e in events[:2]] == ["message_start", "content_block_start"]
    assert [e["type"] for e in events[-3:]] == ["content_block_stop", "message_delta", "message_stop"]
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == REPLY
    assert events[0]["message"]["usage"]["input_tokens"] == PROMPT
    assert events[-2]["usage"] == {"output_tokens": count_tokens(REPLY)}
    assert events[-1]["amazon-bedrock-invocationMetrics"]["inputTokenCount"] == PROMPT


def test_claude_tools(fp: FakeProvider) -> None:
    body = claude_body(tools=CLAUDE_TOOLS, tool_choice={"type": "any"})
    status, _, raw = call(fp, f"/model/{CLAUDE}/invoke", body)
    answer = json.loads(raw)
    assert status == 200 and answer["stop_reason"] == "tool_use"
    assert [(b["type"], b["name"], b["input"]) for b in answer["content"]] == [
        ("tool_use", "get_weather", {"city": "example", "days": 1}), ("tool_use", "get_time", {})]
    _, _, raw = call(fp, f"/model/{CLAUDE}/invoke-with-response-stream",
                     claude_body(tools=CLAUDE_TOOLS, tool_choice={"type": "tool", "name": "get_weather"}))
    events = claude_events(raw)
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["name"] == "get_weather"
    args = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta")
    assert json.loads(args) == {"city": "example", "days": 1}
    # after the tool result the model answers in text
    history = [{"role": "user", "content": HELLO},
               {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_time", "input": {}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "noon"}]}]
    _, _, raw = call(fp, f"/model/{CLAUDE}/invoke", claude_body(tools=CLAUDE_TOOLS, messages=history))
    assert json.loads(raw)["content"][0]["type"] == "text"


def test_claude_thinking_and_max_tokens(fp: FakeProvider) -> None:
    body = claude_body(thinking={"type": "enabled", "budget_tokens": 1024}, max_tokens=3)
    _, _, raw = call(fp, f"/model/{CLAUDE}/invoke", body)
    answer = json.loads(raw)
    thinking, text = answer["content"]
    assert thinking["type"] == "thinking" and thinking["signature"] and thinking["thinking"].startswith("Planning")
    assert text == {"type": "text", "text": "Fake reply"} and answer["stop_reason"] == "max_tokens"
    _, _, raw = call(fp, f"/model/{CLAUDE}/invoke-with-response-stream", body)
    deltas = [e["delta"] for e in claude_events(raw) if e["type"] == "content_block_delta"]
    assert deltas[0]["type"] == "thinking_delta" and deltas[1] == {"type": "signature_delta", "signature": thinking["signature"]}


# --------------------------------------------------------------------------- Converse


def test_converse(fp: FakeProvider) -> None:
    status, _, raw = call(fp, f"/model/{NOVA}/converse", converse_body(inferenceConfig={"maxTokens": 100}), scenario="cached=4")
    assert status == 200, raw
    answer = json.loads(raw)
    output = count_tokens(REPLY)
    assert answer == {
        "output": {"message": {"role": "assistant", "content": [{"text": REPLY}]}}, "stopReason": "end_turn",
        "usage": {"inputTokens": PROMPT - 4, "outputTokens": output, "totalTokens": PROMPT + output,
                  "cacheReadInputTokens": 4, "cacheWriteInputTokens": 0},
        "metrics": {"latencyMs": 1},
    }


def test_converse_stream(fp: FakeProvider) -> None:
    status, _, raw = call(fp, f"/model/{NOVA}/converse-stream", converse_body())
    assert status == 200
    events = converse_events(raw)
    kinds = [k for k, _ in events]
    assert kinds[0] == "messageStart" and kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert "contentBlockStart" not in kinds  # text blocks start at their first delta
    assert "".join(e["delta"]["text"] for k, e in events if k == "contentBlockDelta") == REPLY
    assert events[-2][1] == {"stopReason": "end_turn"}
    assert events[-1][1]["usage"]["inputTokens"] == PROMPT


def test_converse_tools(fp: FakeProvider) -> None:
    tools = {**CONVERSE_TOOLS, "toolChoice": {"tool": {"name": "get_time"}}}
    _, _, raw = call(fp, f"/model/{NOVA}/converse", converse_body(toolConfig=tools))
    answer = json.loads(raw)
    assert answer["stopReason"] == "tool_use"
    assert answer["output"]["message"]["content"] == [{"toolUse": {"toolUseId": "toolu_bdrk_fake_0", "name": "get_time", "input": {}}}]
    _, _, raw = call(fp, f"/model/{NOVA}/converse-stream", converse_body(toolConfig={**CONVERSE_TOOLS, "toolChoice": {"any": {}}}))
    events = converse_events(raw)
    starts = [e["start"]["toolUse"]["name"] for k, e in events if k == "contentBlockStart"]
    assert starts == ["get_weather", "get_time"]
    first = "".join(e["delta"]["toolUse"]["input"] for k, e in events if k == "contentBlockDelta" and e["contentBlockIndex"] == 0)
    assert json.loads(first) == {"city": "example", "days": 1}
    assert events[-2][1] == {"stopReason": "tool_use"}


def test_converse_thinking(fp: FakeProvider) -> None:
    body = converse_body(additionalModelRequestFields={"thinking": {"type": "enabled", "budget_tokens": 1024}})
    _, _, raw = call(fp, "/model/us.anthropic.claude-3-7-sonnet-20250219-v1:0/converse", body)
    reasoning = json.loads(raw)["output"]["message"]["content"][0]["reasoningContent"]["reasoningText"]
    assert reasoning["text"].startswith("Planning") and reasoning["signature"]


@pytest.mark.parametrize(("body", "kind", "message"), [
    (converse_body(messages=[{"role": "user", "content": [{"text": "  "}]}]), "ValidationException", "is blank"),
    (converse_body(messages=[{"role": "user", "content": []}]), "ValidationException", "content"),
    (converse_body(messages=[{"role": "user", "content": [{"text": "hi"}]},
                             {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t", "name": "x", "input": {}}}]}]),
     "ValidationException", "toolConfig field must be defined"),
    (converse_body(model=NOVA), "SerializationException", "model"),
    (converse_body(messages=[{"role": "system", "content": [{"text": "hi"}]}]), "ValidationException", "role"),
])
def test_converse_validation(fp: FakeProvider, body: dict[str, Any], kind: str, message: str) -> None:
    status, headers, raw = call(fp, f"/model/{NOVA}/converse", body)
    assert status == 400 and headers["x-amzn-ErrorType"].startswith(kind)
    assert message in json.loads(raw)["message"]


def test_prompt_tokens_match_chat_mode(fp: FakeProvider) -> None:
    """The same conversation costs the same prompt tokens in chat and Converse form."""
    chat = {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": HELLO}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city", "parameters": SCHEMA}}],
            "tool_choice": "none"}
    req = urllib.request.Request(fp.url("/v1/chat/completions"), data=json.dumps(chat).encode(), method="POST",
                                 headers={"Authorization": "Bearer x", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        chat_prompt = json.loads(resp.read())["usage"]["prompt_tokens"]
    body = converse_body(system=[{"text": "Be brief."}], toolConfig={"tools": CONVERSE_TOOLS["tools"][:1]})
    _, _, raw = call(fp, f"/model/{NOVA}/converse", body)
    assert json.loads(raw)["usage"]["inputTokens"] == chat_prompt


def test_arn_model_ids(fp: FakeProvider) -> None:
    arn = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc123"
    status, _, raw = call(fp, f"/model/{arn}/converse", converse_body())
    assert status == 200, raw
    assert fp.requests()[-1]["path"] == "/model/arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123/converse"


# --------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize(("scenario", "status", "kind"), [
    ("429", 429, "ThrottlingException"), ("500", 500, "InternalServerException"),
    ("503", 503, "ServiceUnavailableException"), ("401", 403, "UnrecognizedClientException"),
])
def test_forced_errors(fp: FakeProvider, scenario: str, status: int, kind: str) -> None:
    for path, body in ((f"/model/{CLAUDE}/invoke-with-response-stream", claude_body()), (f"/model/{NOVA}/converse", converse_body())):
        got, headers, raw = call(fp, path, body, scenario=scenario)
        assert got == status and headers["x-amzn-ErrorType"].startswith(kind + ":")
        assert set(json.loads(raw)) == {"message"}


def test_bad_scenario_and_bad_json(fp: FakeProvider) -> None:
    status, _, raw = call(fp, f"/model/{NOVA}/converse", converse_body(), scenario="nope")
    assert status == 400 and "Unknown scenario item" in json.loads(raw)["message"]
    status, headers, _ = call(fp, f"/model/{NOVA}/converse", b"{not json")
    assert status == 400 and headers["x-amzn-ErrorType"].startswith("SerializationException")


def test_timeout_and_slow(fp: FakeProvider) -> None:
    start = time.monotonic()
    call(fp, f"/model/{NOVA}/converse", converse_body(), scenario="timeout=0.3")
    assert time.monotonic() - start >= 0.3
    start = time.monotonic()
    _, _, raw = call(fp, f"/model/{NOVA}/converse-stream", converse_body(), scenario="slow=20,words=5")
    assert time.monotonic() - start >= 0.02 * (len(frames(raw)) - 1)


def test_cut_garbage_and_words(fp: FakeProvider) -> None:
    _, _, raw = call(fp, f"/model/{CLAUDE}/invoke-with-response-stream", claude_body(), scenario="cut,words=30")
    events = claude_events(raw)  # whole frames only: the cut falls between frames
    assert events and events[-1]["type"] == "content_block_delta"
    _, _, raw = call(fp, f"/model/{NOVA}/converse", converse_body(), scenario="cut")
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    _, _, raw = call(fp, f"/model/{NOVA}/converse-stream", converse_body(), scenario="garbage")
    with pytest.raises(ChecksumMismatch):
        frames(raw)
    _, _, raw = call(fp, f"/model/{CLAUDE}/invoke", claude_body(), scenario="words=30")
    assert len(json.loads(raw)["content"][0]["text"].split()) == 30
