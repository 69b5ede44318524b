"""End-to-end tests of the fake provider: a real child process over real HTTP.

No database, no Django: these only need aiohttp/orjson (and ``openai`` for
the SDK round-trip tests, skipped when it is not installed).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fakeprovider.process import FakeProvider, start_fake_provider
from fakeprovider.tests.raw import raw_post
from fakeprovider.tokens import count_chat_prompt_tokens, count_tokens

AUTH = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"}
USER = [{"role": "user", "content": "Hello there, how are you today?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture(scope="module")
def fp() -> Iterator[FakeProvider]:
    with start_fake_provider() as provider:
        yield provider


def call(
    fp: FakeProvider, path: str, body: Any = None, *, scenario: str | None = None,
    headers: dict[str, str] | None = None, method: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(fp.url(path, scenario), data=data, headers=AUTH if headers is None else headers,
                                 method=method or ("POST" if data is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def chat(fp: FakeProvider, scenario: str | None = None, **body: Any) -> tuple[int, Any]:
    body.setdefault("model", "gpt-4o-mini")
    body.setdefault("messages", USER)
    status, _, raw = call(fp, "/v1/chat/completions", body, scenario=scenario)
    return status, json.loads(raw)


def sse(raw: bytes) -> list[Any]:
    """Parse an SSE body into JSON chunks (``"[DONE]"`` kept as a string)."""
    out: list[Any] = []
    for block in raw.decode().split("\n\n"):
        if block.startswith("data: "):
            payload = block[len("data: "):]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def stream(fp: FakeProvider, scenario: str | None = None, **body: Any) -> tuple[dict[str, str], list[Any]]:
    body.update(stream=True)
    body.setdefault("model", "gpt-4o-mini")
    body.setdefault("messages", USER)
    status, headers, raw = call(fp, "/v1/chat/completions", body, scenario=scenario)
    assert status == 200
    return headers, sse(raw)


def raw_http(fp: FakeProvider, path: str, body: Any) -> bytes:
    return raw_post(fp, path, body, {"Authorization": "Bearer k"})


# ---------------------------------------------------------- routes and auth
def test_health_models_auth(fp: FakeProvider) -> None:
    assert fp.health()
    status, _, raw = call(fp, "/v1/models")
    body = json.loads(raw)
    assert status == 200 and body["object"] == "list"
    assert all(m["object"] == "model" and m["id"] for m in body["data"])
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
        status, _, raw = call(fp, "/v1/models", headers=headers)
        assert status == 401 and json.loads(raw)["error"]["code"] == "invalid_api_key"
    status, _, raw = call(fp, "/v1/chat/completions", {"model": "m", "messages": USER}, headers={})
    assert status == 401


@pytest.mark.parametrize(("scenario", "status", "code", "type_"), [
    ("429", 429, "rate_limit_exceeded", "requests"),
    ("500", 500, None, "server_error"),
    ("503", 503, None, "server_error"),
    ("401", 401, "invalid_api_key", "invalid_request_error"),
])
def test_error_scenarios(fp: FakeProvider, scenario: str, status: int, code: str | None, type_: str) -> None:
    for path in ("/v1/chat/completions", "/v1/embeddings"):
        got, headers, raw = call(fp, path, {"model": "m", "messages": USER, "input": "x"}, scenario=scenario)
        err = json.loads(raw)["error"]
        assert got == status and err["code"] == code and err["type"] == type_ and err["param"] is None
        assert (headers.get("Retry-After") == "1") == (status == 429)
    if scenario == "429":
        assert err["message"] == "Rate limit reached (fake)"


def test_unknown_scenario_and_validation(fp: FakeProvider) -> None:
    status, body = chat(fp, scenario="500,nonsense")
    assert status == 400 and "nonsense" in body["error"]["message"]
    cases = [({"model": ""}, "model"), ({"messages": []}, "messages"), ({"messages": "hi"}, "messages"),
             ({"n": 9}, "n"), ({"max_tokens": 0}, "max_tokens"), ({"tools": [{"type": "function"}]}, "tools"),
             ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice")]
    for extra, param in cases:
        status, body = chat(fp, **extra)
        assert status == 400 and body["error"]["param"] == param, (extra, body)
    assert call(fp, "/v1/chat/completions", b"{not json")[0] == 400


def test_delays(fp: FakeProvider) -> None:
    for scenario, minimum in (("timeout=0.3", 0.3), ("ttfb=250", 0.25)):
        start = time.monotonic()
        assert chat(fp, scenario=scenario)[0] == 200
        assert time.monotonic() - start >= minimum - 0.02

    async def first_and_total() -> tuple[float, float]:
        import aiohttp  # slow=: headers come early, chunks trickle in
        async with aiohttp.ClientSession() as session:
            start = time.monotonic()
            async with session.post(fp.url("/v1/chat/completions", "slow=60,words=5"), headers=AUTH,
                                    json={"model": "m", "messages": USER, "stream": True}) as resp:
                first = time.monotonic() - start
                await resp.read()
            return first, time.monotonic() - start

    first, total = asyncio.run(first_and_total())
    assert first < 0.2 and total >= 6 * 0.06 - 0.03  # 8 events, 7 gaps


# --------------------------------------------------------------- chat, non-stream
def test_chat_non_stream_shape(fp: FakeProvider) -> None:
    status, body = chat(fp)
    assert status == 200
    assert body["id"].startswith("chatcmpl-fake-") and body["object"] == "chat.completion"
    assert isinstance(body["created"], int) and body["model"] == "gpt-4o-mini"
    assert body["system_fingerprint"] == "fp_fake"
    text = "Fake reply to: Hello there, how are you today?"
    assert body["choices"] == [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                                "logprobs": None, "finish_reason": "stop"}]
    p, c = count_chat_prompt_tokens(USER), count_tokens(text)
    assert body["usage"] == {
        "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
    assert chat(fp)[1]["id"] != body["id"]


def test_reply_words_images_n_max_tokens(fp: FakeProvider) -> None:
    long = " ".join(f"w{i}" for i in range(30))
    msgs = [{"role": "user", "content": "ignored"}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": long}]
    text = chat(fp, messages=msgs)[1]["choices"][0]["message"]["content"]
    assert text == "Fake reply to: " + " ".join(f"w{i}" for i in range(12))
    text = chat(fp, scenario="words=9", messages=[{"role": "user", "content": "a b"}])[1]["choices"][0]["message"]
    assert text["content"] == "Fake reply to: a b Fake reply to: a"
    assert chat(fp, scenario="words=40")[1]["choices"][0]["message"]["content"].count(" ") == 39
    parts = [{"type": "text", "text": "what"}, {"type": "image_url", "image_url": {"url": "http://x/i.png"}},
             {"type": "text", "text": "is it"}]
    body = chat(fp, messages=[{"role": "user", "content": parts}])[1]
    assert body["choices"][0]["message"]["content"] == "Fake reply to: (saw 1 image(s)) what is it"
    assert body["usage"]["prompt_tokens"] == 3 + 85 + 3
    body = chat(fp, n=3)[1]
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    one = count_tokens(body["choices"][0]["message"]["content"])
    assert body["usage"]["completion_tokens"] == 3 * one
    body = chat(fp, max_tokens=5)[1]  # "Fake reply to : Hello" = 5 tokens
    assert body["choices"][0]["message"]["content"] == "Fake reply to: Hello"
    assert body["choices"][0]["finish_reason"] == "length" and body["usage"]["completion_tokens"] == 5
    body = chat(fp, max_completion_tokens=1000)[1]
    assert body["choices"][0]["finish_reason"] == "stop"


def test_cached_tokens(fp: FakeProvider) -> None:
    assert chat(fp, scenario="cached=4")[1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 4
    usage = chat(fp, scenario="cached=100000")[1]["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == usage["prompt_tokens"]


def test_tool_calls(fp: FakeProvider) -> None:
    body = chat(fp, tools=[WEATHER, TIME])[1]
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    args = '{"city":"example","unit":"celsius","days":1}'
    assert calls == [{"id": "call_fake_0", "type": "function", "function": {"name": "get_weather", "arguments": args}}]
    assert body["usage"]["completion_tokens"] == count_tokens("get_weather") + count_tokens(args)
    assert body["usage"]["prompt_tokens"] == count_chat_prompt_tokens(USER, [WEATHER, TIME])
    named = {"type": "function", "function": {"name": "get_time"}}
    calls = chat(fp, tools=[WEATHER, TIME], tool_choice=named)[1]["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_time"] and calls[0]["function"]["arguments"] == "{}"
    calls = chat(fp, tools=[WEATHER, TIME], tool_choice="required")[1]["choices"][0]["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_fake_0", "call_fake_1"]
    calls = chat(fp, tools=[WEATHER, TIME], tool_choice="required", parallel_tool_calls=False)[1]
    assert len(calls["choices"][0]["message"]["tool_calls"]) == 1
    msg = chat(fp, tools=[WEATHER], tool_choice="none")[1]["choices"][0]["message"]
    assert "tool_calls" not in msg and msg["content"].startswith("Fake reply to:")
    convo = [*USER, {"role": "assistant", "content": None, "tool_calls": calls["choices"][0]["message"]["tool_calls"]},
             {"role": "tool", "tool_call_id": "call_fake_0", "content": "sunny"}]
    body = chat(fp, tools=[WEATHER], messages=convo)[1]
    assert body["choices"][0]["finish_reason"] == "stop" and body["choices"][0]["message"]["content"]


def test_response_formats(fp: FakeProvider) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array",
              "items": {"$ref": "#/$defs/Tag"}}}, "$defs": {"Tag": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    body = chat(fp, response_format=fmt)[1]
    content = body["choices"][0]["message"]["content"]
    assert content == '{"name":"example","tags":[1]}' and body["usage"]["completion_tokens"] == count_tokens(content)
    body = chat(fp, response_format={"type": "json_object"})[1]
    assert json.loads(body["choices"][0]["message"]["content"]) == {
        "result": "Fake reply to: Hello there, how are you today?"}


def test_cut_non_stream(fp: FakeProvider) -> None:
    raw = raw_http(fp, "/s/cut/v1/chat/completions", {"model": "m", "messages": USER})
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")))
    assert head.startswith(b"HTTP/1.1 200") and 0 < len(body) < length


# -------------------------------------------------------------------- stream
def test_stream_text_and_usage(fp: FakeProvider) -> None:
    headers, events = stream(fp, stream_options={"include_usage": True})
    assert headers["Content-Type"].startswith("text/event-stream") and events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" and c["system_fingerprint"] == "fp_fake" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["usage"] is None for c in chunks[:-1])
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    assert text == "Fake reply to: Hello there, how are you today?"
    assert len(chunks) == 1 + len(text.split()) + 1 + 1
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == count_tokens(text)
    _, plain = stream(fp, scenario="words=3")
    assert "usage" not in plain[0] and plain[-2]["choices"][0]["finish_reason"] == "stop"
    assert [c["choices"][0]["delta"].get("content") for c in plain[1:4]] == ["Fake", " reply", " to:"]


def test_stream_tool_calls(fp: FakeProvider) -> None:
    _, events = stream(fp, tools=[WEATHER, TIME], tool_choice="required")
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    calls: dict[int, dict[str, str]] = {}
    for c in chunks[1:-1]:
        for tc in c["choices"][0]["delta"]["tool_calls"]:
            if "id" in tc:
                assert tc["function"]["arguments"] == "" and tc["type"] == "function"
                calls[tc["index"]] = {"id": tc["id"], "name": tc["function"]["name"], "args": ""}
            else:
                calls[tc["index"]]["args"] += tc["function"]["arguments"]
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["args"])["city"] == "example"
    assert calls[1] == {"id": "call_fake_1", "name": "get_time", "args": "{}"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_n_and_json(fp: FakeProvider) -> None:
    _, events = stream(fp, n=2, scenario="words=4")
    for i in (0, 1):
        mine = [c["choices"][0] for c in events[:-1] if c["choices"][0]["index"] == i]
        assert "".join(ch["delta"].get("content") or "" for ch in mine) == "Fake reply to: Hello"
    _, events = stream(fp, response_format={"type": "json_object"})
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in events[:-1])
    assert json.loads(text) == {"result": "Fake reply to: Hello there, how are you today?"}


def test_stream_cut(fp: FakeProvider) -> None:
    body = {"model": "m", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    raw = raw_http(fp, "/s/cut,words=20/v1/chat/completions", body)
    assert raw.startswith(b"HTTP/1.1 200")
    assert b'"role":"assistant"' in raw and b"[DONE]" not in raw and b'"usage":{' not in raw
    assert b'"finish_reason":"stop"' not in raw and raw.count(b'"content":') == 1 + 10


def test_stream_garbage(fp: FakeProvider) -> None:
    _, _, raw = call(fp, "/v1/chat/completions", {"model": "m", "messages": USER, "stream": True},
                     scenario="garbage,words=4")
    blocks = [b for b in raw.decode().split("\n\n") if b]
    assert blocks[2] == "data: {not json" and blocks[-1] == "data: [DONE]"
    good = [json.loads(b[6:]) for b in blocks[:-1] if b != "data: {not json"]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in good) == "Fake reply to: Hello"


# ---------------------------------------------------------------- embeddings
def test_embeddings(fp: FakeProvider) -> None:
    def emb(**body: Any) -> tuple[int, Any]:
        status, _, raw = call(fp, "/v1/embeddings", {"model": "text-embedding-3-small", **body})
        return status, json.loads(raw)

    status, body = emb(input="hello world")
    assert status == 200 and body["object"] == "list" and body["model"] == "text-embedding-3-small"
    vec = body["data"][0]["embedding"]
    assert body["data"][0]["object"] == "embedding" and len(vec) == 1536
    assert abs(math.sqrt(sum(x * x for x in vec)) - 1) < 1e-5
    assert body["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert emb(input="hello world")[1]["data"][0]["embedding"] == vec  # deterministic
    b64 = emb(input=["hello world", "other"], encoding_format="base64")[1]
    decoded = struct.unpack("<1536f", base64.b64decode(b64["data"][0]["embedding"]))
    assert list(decoded) == vec and b64["data"][1]["index"] == 1 and b64["data"][1]["embedding"] != \
        b64["data"][0]["embedding"]
    body = emb(input=[[1, 2, 3], [4]], dimensions=8)[1]
    assert [len(d["embedding"]) for d in body["data"]] == [8, 8] and body["usage"]["prompt_tokens"] == 4
    assert emb(input=[5, 6, 7])[1]["usage"]["prompt_tokens"] == 3
    for bad, param in (({}, "input"), ({"input": [{"x": 1}]}, "input"), ({"input": "x", "dimensions": 0},
                       "dimensions"), ({"input": "x", "encoding_format": "hex"}, "encoding_format")):
        status, body = emb(**bad)
        assert status == 400 and body["error"]["param"] == param


# ----------------------------------------------------------------- recording
def test_recording(fp: FakeProvider) -> None:
    fp.clear()
    assert fp.requests() == []
    chat(fp, scenario="words=2", temperature=0.5)
    call(fp, "/v1/models")
    recs = fp.requests()
    assert [r["method"] for r in recs] == ["POST", "GET"]
    assert recs[0]["path"] == "/s/words=2/v1/chat/completions"
    assert recs[0]["headers"]["authorization"] == "Bearer sk-test" and recs[0]["body"]["temperature"] == 0.5
    assert recs[1]["body"] is None
    fp.clear()
    assert fp.requests() == []


def test_no_record_and_clean_stop() -> None:
    with start_fake_provider(record=False) as other:
        assert chat(other)[0] == 200 and other.requests() == []
    assert other.proc.returncode == 0


# ------------------------------------------------------------ official SDK
def test_openai_sdk(fp: FakeProvider) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=fp.base_url + "/v1", api_key="x", max_retries=0)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert resp.choices[0].message.content == "Fake reply to: Hello there, how are you today?"
    assert resp.usage is not None and resp.usage.prompt_tokens_details.cached_tokens == 0
    pieces, usage = [], None
    for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True,
                                                stream_options={"include_usage": True}):
        pieces += [c.delta.content or "" for c in chunk.choices]
        usage = chunk.usage or usage
    assert "".join(pieces) == resp.choices[0].message.content and usage == resp.usage
    tc = client.chat.completions.create(model="m", messages=USER, tools=[WEATHER])
    call0 = tc.choices[0].message.tool_calls[0]
    assert call0.function.name == "get_weather" and json.loads(call0.function.arguments)["days"] == 1
    with client.chat.completions.stream(model="m", messages=USER, tools=[WEATHER, TIME],
                                        tool_choice="required") as s:
        final = s.get_final_completion()
    assert [t.function.name for t in final.choices[0].message.tool_calls] == ["get_weather", "get_time"]
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": {
        "type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"], "additionalProperties": False}}}
    js = client.chat.completions.create(model="m", messages=USER, response_format=fmt)
    assert json.loads(js.choices[0].message.content) == {"x": 1}
    emb = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])  # base64 on the wire
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 1536 and emb.usage.prompt_tokens == 2
    flt = client.embeddings.create(model="text-embedding-3-small", input="a", encoding_format="float", dimensions=4)
    assert len(flt.data[0].embedding) == 4
    assert client.embeddings.create(model="e", input="a", dimensions=4).data[0].embedding == flt.data[0].embedding
    assert {m.id for m in client.models.list()} >= {"gpt-4o-mini"}
    with pytest.raises(openai.RateLimitError):
        openai.OpenAI(base_url=fp.url("/v1", "429"), api_key="x", max_retries=0).models.list()
