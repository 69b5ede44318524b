"""The fake provider's Gemini mode, end to end: a real child process over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fakeprovider.process import FakeProvider, start_fake_provider
from fakeprovider.tests.raw import raw_post
from fakeprovider.tokens import count_chat_prompt_tokens, count_tokens

KEY = {"x-goog-api-key": "AIza-fake", "Content-Type": "application/json"}
HELLO = [{"role": "user", "parts": [{"text": "Hello there, how are you today?"}]}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}, "days": {"type": "INTEGER"}},
        "required": ["city"],
    },
}
TIME = {"name": "get_time"}


@pytest.fixture(scope="module")
def fp() -> Iterator[FakeProvider]:
    with start_fake_provider() as provider:
        yield provider


def call(
    fp: FakeProvider, path: str, body: Any = None, *, scenario: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(fp.url(path, scenario), data=data, method="POST",
                                 headers=KEY if headers is None else headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def generate(fp: FakeProvider, scenario: str | None = None, model: str = "gemini-2.5-flash", **body: Any) -> tuple[int, Any]:
    body.setdefault("contents", HELLO)
    status, _, raw = call(fp, f"/v1beta/models/{model}:generateContent", body, scenario=scenario)
    return status, json.loads(raw)


def sse(raw: bytes) -> list[Any]:
    return [json.loads(block[len("data: "):]) for block in raw.decode().split("\r\n\r\n") if block.startswith("data: ")]


def stream(fp: FakeProvider, scenario: str | None = None, model: str = "gemini-2.5-flash", **body: Any) -> list[Any]:
    body.setdefault("contents", HELLO)
    status, headers, raw = call(fp, f"/v1beta/models/{model}:streamGenerateContent?alt=sse", body, scenario=scenario)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    return sse(raw)


def parts_of(body: Any) -> list[dict[str, Any]]:
    return body["candidates"][0]["content"]["parts"]


def prompt_tokens(contents: list[Any], tools: list[Any] | None = None) -> int:
    messages = [{"role": "user", "content": [{"type": "text", "text": p["text"]} for p in c["parts"]]} for c in contents]
    return count_chat_prompt_tokens(messages, [{"function": t} for t in tools or []])


# ---------------------------------------------------------------- auth, errors, validation
def test_auth_header_or_query_key(fp: FakeProvider) -> None:
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    status, _, raw = call(fp, path, {"contents": HELLO}, headers={"Content-Type": "application/json"})
    assert status == 403 and json.loads(raw)["error"]["status"] == "PERMISSION_DENIED"
    assert json.loads(raw)["error"]["code"] == 403
    assert call(fp, path + "?key=AIza-q", {"contents": HELLO}, headers={})[0] == 200
    assert call(fp, path, {"contents": HELLO})[0] == 200
    assert call(fp, "/v1/models/gemini-2.5-flash:generateContent", {"contents": HELLO})[0] == 200


@pytest.mark.parametrize(("scenario", "status", "google_status"), [
    ("429", 429, "RESOURCE_EXHAUSTED"),
    ("500", 500, "INTERNAL"),
    ("503", 503, "UNAVAILABLE"),
    ("401", 400, "INVALID_ARGUMENT"),  # Google answers a bad key with 400 API_KEY_INVALID
])
def test_error_scenarios(fp: FakeProvider, scenario: str, status: int, google_status: str) -> None:
    for method in ("generateContent", "streamGenerateContent?alt=sse", "batchEmbedContents"):
        got, _, raw = call(fp, f"/v1beta/models/m:{method}", {"contents": HELLO}, scenario=scenario)
        error = json.loads(raw)["error"]
        assert got == status and error["code"] == status and error["status"] == google_status and error["message"]


@pytest.mark.parametrize(("body", "fragment"), [
    ({"contents": []}, "contents is not specified"),
    ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "valid role"),
    ({"contents": [{"role": "user", "parts": []}]}, "must not be empty"),
    ({"contents": [{"role": "user", "parts": [{"text": "a", "inlineData": {}}]}]}, "oneof"),
    ({"contents": HELLO, "temperature": 1}, 'Unknown name "temperature"'),
    ({"contents": HELLO, "generationConfig": {"maxOutputTokens": 0}}, "max_output_tokens"),
    ({"contents": HELLO, "generationConfig": {"responseMimeType": "text/html"}}, "response_mime_type"),
    ({"contents": HELLO, "generationConfig": {"responseSchema": {"type": "object"}}}, "response_schema"),
    ({"contents": HELLO, "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
        "type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}}}]}]},
     'Unknown name "additionalProperties"'),
    ({"contents": HELLO, "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
        "type": "object", "properties": {}}}]}]}, "non-empty for OBJECT"),
    ({"contents": HELLO, "tools": [{"functionDeclarations": [{"description": "no name"}]}]}, "function name"),
])
def test_validation(fp: FakeProvider, body: dict[str, Any], fragment: str) -> None:
    status, answer = generate(fp, **body)
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT", answer
    assert fragment in answer["error"]["message"]


def test_bad_json_unknown_method_unknown_scenario(fp: FakeProvider) -> None:
    status, _, raw = call(fp, "/v1beta/models/m:generateContent", b"{nope")
    assert status == 400 and json.loads(raw)["error"]["status"] == "INVALID_ARGUMENT"
    status, _, raw = call(fp, "/v1beta/models/m:countTokens", {"contents": HELLO})
    assert status == 404 and json.loads(raw)["error"]["status"] == "NOT_FOUND"
    status, _, raw = call(fp, "/v1beta/models/m:generateContent", {"contents": HELLO}, scenario="nonsense")
    assert status == 400 and "nonsense" in json.loads(raw)["error"]["message"]


# ---------------------------------------------------------------- generateContent
def test_text_answer_and_usage(fp: FakeProvider) -> None:
    contents = [{"role": "user", "parts": [{"text": "ignored"}]}, {"role": "model", "parts": [{"text": "ok"}]}] + HELLO
    system = {"parts": [{"text": "Be brief."}]}
    status, body = generate(fp, contents=contents, systemInstruction=system)
    assert status == 200
    text = "Fake reply to: Hello there, how are you today?"
    assert body["candidates"] == [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}]
    prompt = prompt_tokens([system] + contents)
    completion = count_tokens(text)
    assert body["usageMetadata"] == {
        "promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    assert body["modelVersion"] == "gemini-2.5-flash" and body["responseId"].startswith("fake-gemini-")
    record = fp.requests()[-1]
    assert record["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert record["headers"]["x-goog-api-key"] == "AIza-fake" and record["body"]["systemInstruction"] == system


def test_max_tokens_images_cached(fp: FakeProvider) -> None:
    _, body = generate(fp, generationConfig={"maxOutputTokens": 3})
    assert parts_of(body) == [{"text": "Fake reply"}] and body["candidates"][0]["finishReason"] == "MAX_TOKENS"
    image = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}}
    _, body = generate(fp, scenario="cached=5", contents=[{"role": "user", "parts": [{"text": "what"}, image]}])
    assert parts_of(body)[0]["text"] == "Fake reply to: (saw 1 image(s)) what"
    assert body["usageMetadata"]["promptTokenCount"] == 3 + 1 + 85
    assert body["usageMetadata"]["cachedContentTokenCount"] == 5


def test_function_calls(fp: FakeProvider) -> None:
    tools = [{"functionDeclarations": [WEATHER, TIME]}]
    _, body = generate(fp, tools=tools)
    assert parts_of(body) == [{"functionCall": {"name": "get_weather", "args": {"city": "example", "days": 1}}}]
    assert body["candidates"][0]["finishReason"] == "STOP"
    assert body["usageMetadata"]["promptTokenCount"] == prompt_tokens(HELLO, [WEATHER, TIME])
    any_mode = {"functionCallingConfig": {"mode": "ANY"}}
    assert [p["functionCall"]["name"] for p in parts_of(generate(fp, tools=tools, toolConfig=any_mode)[1])] == [
        "get_weather", "get_time"]
    only = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}}
    assert parts_of(generate(fp, tools=tools, toolConfig=only)[1]) == [{"functionCall": {"name": "get_time", "args": {}}}]
    none = {"functionCallingConfig": {"mode": "NONE"}}
    assert "text" in parts_of(generate(fp, tools=tools, toolConfig=none)[1])[0]
    after = HELLO + [
        {"role": "model", "parts": [{"functionCall": {"name": "get_time", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_time", "response": {"content": "noon"}}}]},
    ]
    assert parts_of(generate(fp, tools=tools, contents=after)[1])[0]["text"].startswith("Fake reply to: Hello")


def test_json_mode(fp: FakeProvider) -> None:
    schema = {"type": "OBJECT", "properties": {"name": {"type": "STRING"}, "tags": {"type": "ARRAY", "items": {"type": "STRING"}}}}
    config = {"responseMimeType": "application/json", "responseSchema": schema}
    _, body = generate(fp, generationConfig=config)
    assert json.loads(parts_of(body)[0]["text"]) == {"name": "example", "tags": ["example"]}
    _, body = generate(fp, generationConfig={"responseMimeType": "application/json"})
    assert json.loads(parts_of(body)[0]["text"]) == {"result": "Fake reply to: Hello there, how are you today?"}


def test_thinking_parts_and_signature(fp: FakeProvider) -> None:
    config = {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}}
    _, body = generate(fp, generationConfig=config)
    thought, answer = parts_of(body)
    assert thought["thought"] is True and thought["text"].startswith("**Planning the answer**")
    assert answer["text"].startswith("Fake reply to:") and answer["thoughtSignature"]
    assert body["usageMetadata"]["thoughtsTokenCount"] == count_tokens(thought["text"])
    _, calls = generate(fp, generationConfig=config, tools=[{"functionDeclarations": [WEATHER]}])
    assert "thoughtSignature" in parts_of(calls)[1] and "functionCall" in parts_of(calls)[1]
    off = {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 0}}
    assert len(parts_of(generate(fp, generationConfig=off)[1])) == 1


def test_gemini_3_requires_signatures_in_current_turn(fp: FakeProvider) -> None:
    tools = [{"functionDeclarations": [TIME]}]
    _, first = generate(fp, model="gemini-3-pro-preview", tools=tools)
    call_part = parts_of(first)[0]
    assert call_part["thoughtSignature"]  # Gemini 3 signs function calls even without includeThoughts
    result = {"role": "user", "parts": [{"functionResponse": {"name": "get_time", "response": {"content": "noon"}}}]}
    good = HELLO + [{"role": "model", "parts": [call_part]}, result]
    assert generate(fp, model="gemini-3-pro-preview", tools=tools, contents=good)[0] == 200
    stripped = HELLO + [{"role": "model", "parts": [{"functionCall": call_part["functionCall"]}]}, result]
    status, body = generate(fp, model="gemini-3-pro-preview", tools=tools, contents=stripped)
    assert status == 400 and "thought_signature" in body["error"]["message"]
    assert generate(fp, model="gemini-2.5-flash", tools=tools, contents=stripped)[0] == 200
    # Only the current turn is checked: an old unsigned turn before a new user message passes.
    later = stripped + [{"role": "model", "parts": [{"text": "It is noon."}]}, *HELLO]
    assert generate(fp, model="gemini-3-pro-preview", contents=later)[0] == 200


# ---------------------------------------------------------------- streamGenerateContent
def test_stream_matches_non_stream(fp: FakeProvider) -> None:
    chunks = stream(fp, scenario="cached=2")
    text = "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"])
    _, whole = generate(fp, scenario="cached=2")
    assert text == parts_of(whole)[0]["text"] and len(chunks) > 3
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"] == whole["usageMetadata"]
    assert chunks[0]["usageMetadata"] == {"promptTokenCount": whole["usageMetadata"]["promptTokenCount"],
                                          "totalTokenCount": whole["usageMetadata"]["promptTokenCount"]}
    assert len({c["responseId"] for c in chunks}) == 1


def test_stream_thoughts_and_calls(fp: FakeProvider) -> None:
    config = {"thinkingConfig": {"includeThoughts": True}}
    chunks = stream(fp, generationConfig=config, tools=[{"functionDeclarations": [WEATHER, TIME]}],
                    toolConfig={"functionCallingConfig": {"mode": "ANY"}})
    assert [len(c["candidates"][0]["content"]["parts"]) for c in chunks] == [1, 2]
    assert chunks[0]["candidates"][0]["content"]["parts"][0]["thought"] is True
    first, second = chunks[1]["candidates"][0]["content"]["parts"]
    assert first["thoughtSignature"] and "thoughtSignature" not in second
    assert chunks[1]["usageMetadata"]["thoughtsTokenCount"] > 0


def test_stream_without_alt_sse_is_a_json_array(fp: FakeProvider) -> None:
    status, headers, raw = call(fp, "/v1beta/models/m:streamGenerateContent", {"contents": HELLO})
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    chunks = json.loads(raw)
    assert isinstance(chunks, list) and chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def raw_http(fp: FakeProvider, path: str, body: Any) -> bytes:
    return raw_post(fp, path, body, {"x-goog-api-key": "k"})


def test_cut_and_garbage(fp: FakeProvider) -> None:
    raw = raw_http(fp, "/s/cut,words=20/v1beta/models/m:streamGenerateContent?alt=sse", {"contents": HELLO})
    assert b"data: " in raw and b"finishReason" not in raw
    raw = raw_http(fp, "/s/cut/v1beta/models/m:generateContent", {"contents": HELLO})
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    assert 0 < len(body) < length
    status, _, raw = call(fp, "/v1beta/models/m:streamGenerateContent?alt=sse", {"contents": HELLO}, scenario="garbage")
    assert status == 200 and b"data: {not json\r\n\r\n" in raw


def test_timeout_and_slow(fp: FakeProvider) -> None:
    start = time.monotonic()
    assert generate(fp, scenario="timeout=0.3")[0] == 200
    assert time.monotonic() - start >= 0.28

    async def first_and_total() -> tuple[float, float]:
        import aiohttp
        async with aiohttp.ClientSession() as session:
            start = time.monotonic()
            url = fp.url("/v1beta/models/m:streamGenerateContent?alt=sse", "slow=60,words=5")
            async with session.post(url, headers=KEY, json={"contents": HELLO}) as resp:
                first = time.monotonic() - start
                await resp.read()
            return first, time.monotonic() - start

    first, total = asyncio.run(first_and_total())
    assert first < 0.2 and total >= 4 * 0.06 - 0.03  # 5 chunks, 4 gaps


# ---------------------------------------------------------------- embeddings
def test_batch_embed_contents(fp: FakeProvider) -> None:
    body = {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello"}]}},
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "world"}]}, "outputDimensionality": 8},
    ]}
    status, _, raw = call(fp, "/v1beta/models/text-embedding-004:batchEmbedContents", body)
    out = json.loads(raw)
    assert status == 200 and [len(e["values"]) for e in out["embeddings"]] == [768, 8]
    assert "usage" not in out and "usageMetadata" not in out  # batchEmbedContents reports none
    again = json.loads(call(fp, "/v1beta/models/text-embedding-004:batchEmbedContents", body)[2])
    assert again == out
    status, _, raw = call(fp, "/v1beta/models/text-embedding-004:embedContent", {"content": {"parts": [{"text": "hello"}]}})
    assert json.loads(raw)["embedding"]["values"] == out["embeddings"][0]["values"]
    wrong = {"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]}
    for bad in (wrong, {"requests": []}, {"requests": [{"content": {"parts": []}}]}):
        status, _, raw = call(fp, "/v1beta/models/text-embedding-004:batchEmbedContents", bad)
        assert status == 400 and json.loads(raw)["error"]["status"] == "INVALID_ARGUMENT"
