"""Azure OpenAI mode of the fake provider.

Routes (also behind the ``/s/<scenarios>`` prefix):

- ``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` and
  ``.../embeddings``: the deployment API
  (https://learn.microsoft.com/azure/ai-foundry/openai/reference). The key comes in the
  ``api-key`` header (401 without it) and ``api-version`` is required (Azure answers 404
  "Resource not found" without it). The body's ``model`` is optional and ignored, as on Azure:
  the deployment decides, and its name is the answer's ``model``.
- ``POST /openai/v1/chat/completions`` and ``/openai/v1/embeddings``: the v1 API
  (https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle), no api-version,
  ``model`` = the deployment name; ``api-key`` or ``Authorization: Bearer``.
- ``POST /openai/v1/responses`` (v1, an optional api-version ignored) and
  ``/openai/responses?api-version=...`` (the dated preview surface): the Responses mode's answers
  (:mod:`fakeprovider.responses`, https://learn.microsoft.com/azure/ai-foundry/openai/how-to/responses).
- ``POST /anthropic/v1/messages``: Claude deployments of an Azure AI Foundry resource, answered
  by the Anthropic mode with its auth (``x-api-key``) and validation
  (https://platform.claude.com/docs/en/build-with-claude/claude-in-microsoft-foundry).

Answers are the chat mode's (:mod:`fakeprovider.chat`), byte-compatible with OpenAI's, plus
Azure's content-filter annotations: ``prompt_filter_results`` on the body and, in streams, a
first chunk with empty ``choices``, ``model`` "" and ``created`` 0 that carries only them
(https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter#streaming); gateways
must skip that chunk. Errors use Azure's shape ``{"error": {"code": "<status>", "message": ...}}``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import orjson
from aiohttp import web

from . import content as gen
from .chat import BadRequest, Chat, completion_body, plan_chat, stream_events
from .scenarios import DEFAULT, Scenario, ScenarioError, parse_scenarios
from .tokens import count_embedding_tokens

__all__ = ["ROUTES", "PROMPT_FILTER_RESULTS"]

_JSON = "application/json"
_NO_BODY = object()
_SAFE = {"filtered": False, "severity": "safe"}
#: What Azure reports for a prompt its default content filter let through.
PROMPT_FILTER_RESULTS = [{
    "prompt_index": 0,
    "content_filter_results": {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE,
                               "jailbreak": {"filtered": False, "detected": False}},
}]


def _azure_error(status: int, message: str, code: str | None = None) -> web.Response:
    body = orjson.dumps({"error": {"code": code or str(status), "message": message}})
    return web.Response(body=body, status=status, content_type=_JSON)


_DENIED = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
           "for an active subscription and use a correct regional API endpoint for your resource. (fake)")
_FORCED = {
    429: "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version have exceeded call rate "
         "limit of your current OpenAI S0 pricing tier. Please retry after 1 second. (fake)",
    500: "The server had an error while processing your request. (fake)",
    503: "The service is temporarily unable to process your request. (fake)",
    401: _DENIED,
}


def _bad_request(message: str, param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
    return web.Response(body=orjson.dumps(body), status=400, content_type=_JSON)


async def _prelude(request: web.Request, *, deployment_api: bool) -> tuple[Scenario, Any] | web.Response:
    """Record, scenario, auth, api-version, delays, forced errors: ``(scenario, body)`` or the
    response that ends the request (server._prelude with Azure's auth)."""
    from .server import RECORDS  # late: server.py imports this module for its routes

    raw = await request.read() if request.can_read_body else b""
    body: Any = None
    if raw:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = _NO_BODY
    records = request.app.get(RECORDS)
    if records is not None:
        records.append({
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": None if body is _NO_BODY else body,
        })
    spec = request.match_info.get("scenario")
    try:
        sc = parse_scenarios(spec) if spec else DEFAULT
    except ScenarioError as exc:
        return _bad_request(str(exc))
    key = request.headers.get("api-key", "").strip()
    if not key and not deployment_api:  # the v1 API also takes the key as a bearer token
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not key:
        return _azure_error(401, _DENIED)
    if deployment_api and not request.query.get("api-version", "").strip():
        return _azure_error(404, "Resource not found")
    if sc.pre_delay:
        await asyncio.sleep(sc.pre_delay)
    if sc.error is not None:
        return _azure_error(sc.error, _FORCED[sc.error], "429" if sc.error == 429 else None)
    if body is _NO_BODY:
        return _bad_request("We could not parse the JSON body of your request (fake).")
    return sc, body


async def _abort_after(request: web.Request, resp: web.StreamResponse, data: bytes) -> web.StreamResponse:
    if data:
        await resp.write(data)
    if request.transport is not None:
        request.transport.close()  # flushes what was written, then hangs up (the cut scenario)
    return resp


async def _send_stream(request: web.Request, chat: Chat, cid: str, created: int, sc: Scenario,
                       include_usage: bool) -> web.StreamResponse:
    head, body, tail = stream_events(chat, cid, created, sc, include_usage)
    filters = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
               "prompt_filter_results": PROMPT_FILTER_RESULTS}
    head = [b"data: " + orjson.dumps(filters) + b"\n\n", *head]
    events = head + (body[: max(1, len(body) // 2)] if sc.cut and body else body)
    if not sc.cut:
        events += tail
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    if sc.slow:
        for i, event in enumerate(events):
            if i:
                await asyncio.sleep(sc.slow)
            await resp.write(event)
        data = b""
    else:
        data = b"".join(events)
    if sc.cut:
        return await _abort_after(request, resp, data)
    await resp.write(data)
    return resp


async def _chat(request: web.Request, *, deployment_api: bool) -> web.StreamResponse:
    from .server import COUNTER

    pre = await _prelude(request, deployment_api=deployment_api)
    if isinstance(pre, web.Response):
        return pre
    sc, body = pre
    if deployment_api and isinstance(body, dict):
        body = {**body, "model": request.match_info["deployment"]}
    try:
        chat = plan_chat(body, sc)
    except BadRequest as exc:
        return _bad_request(exc.message, exc.param)
    cid = f"chatcmpl-fake-{next(request.app[COUNTER])}"
    created = int(time.time())
    if body.get("stream") is True:
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        return await _send_stream(request, chat, cid, created, sc, include_usage)
    data = completion_body(chat, cid, created, sc)
    answer = orjson.loads(data)
    answer["prompt_filter_results"] = PROMPT_FILTER_RESULTS
    data = orjson.dumps(answer)
    if sc.cut:
        resp = web.StreamResponse(headers={"Content-Type": _JSON})
        resp.content_length = len(data)
        await resp.prepare(request)
        return await _abort_after(request, resp, data[: len(data) // 2])
    return web.Response(body=data, content_type=_JSON)


async def _embeddings(request: web.Request, *, deployment_api: bool) -> web.Response:
    from .server import _embedding_items

    pre = await _prelude(request, deployment_api=deployment_api)
    if isinstance(pre, web.Response):
        return pre
    _, body = pre
    if not isinstance(body, dict):
        return _bad_request("Request body must be a JSON object.")
    model = request.match_info["deployment"] if deployment_api else body.get("model")
    if not isinstance(model, str) or not model:
        return _bad_request("you must provide a model parameter", "model")
    items = _embedding_items(body.get("input"))
    if items is None:
        return _bad_request("Invalid 'input': expected a string, array of strings or token arrays.", "input")
    dims = body.get("dimensions", 1536)
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 16384:
        return _bad_request("Invalid 'dimensions': expected an integer between 1 and 16384.", "dimensions")
    fmt = body.get("encoding_format") or "float"
    if fmt == "float":
        vectors: list[Any] = [gen.embedding_floats(x, dims) for x in items]
    elif fmt == "base64":
        vectors = [base64.b64encode(gen.embedding_bytes(x, dims)).decode() for x in items]
    else:
        return _bad_request("Invalid 'encoding_format': expected 'float' or 'base64'.", "encoding_format")
    tokens = count_embedding_tokens(body["input"])
    return web.Response(content_type=_JSON, body=orjson.dumps({
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))


async def _responses(request: web.Request, *, dated: bool) -> web.StreamResponse:
    """The Responses mode's answer (:mod:`fakeprovider.responses`) behind Azure's auth."""
    from . import responses
    from .server import COUNTER

    pre = await _prelude(request, deployment_api=dated)
    if isinstance(pre, web.Response):
        return pre
    sc, body = pre
    try:
        plan = responses.plan_response(body, sc)
    except BadRequest as exc:
        return _bad_request(exc.message, exc.param)
    n = next(request.app[COUNTER])
    created = int(time.time())
    if body.get("stream") is True:
        head, events, tail = responses.stream_events(plan, n, created, sc)
        frames = head + (events[: max(1, len(events) // 2)] if sc.cut else events + tail)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        if sc.slow:
            for i, frame in enumerate(frames):
                if i:
                    await asyncio.sleep(sc.slow)
                await resp.write(frame)
            data = b""
        else:
            data = b"".join(frames)
        if sc.cut:
            return await _abort_after(request, resp, data)
        await resp.write(data)
        return resp
    data = responses.response_body(plan, n, created, sc)
    if sc.cut:
        resp = web.StreamResponse(headers={"Content-Type": _JSON})
        resp.content_length = len(data)
        await resp.prepare(request)
        return await _abort_after(request, resp, data[: len(data) // 2])
    return web.Response(body=data, content_type=_JSON)


async def deployment_chat(request: web.Request) -> web.StreamResponse:
    return await _chat(request, deployment_api=True)


async def deployment_embeddings(request: web.Request) -> web.Response:
    return await _embeddings(request, deployment_api=True)


async def v1_chat(request: web.Request) -> web.StreamResponse:
    return await _chat(request, deployment_api=False)


async def v1_embeddings(request: web.Request) -> web.Response:
    return await _embeddings(request, deployment_api=False)


async def v1_responses(request: web.Request) -> web.StreamResponse:
    return await _responses(request, dated=False)


async def dated_responses(request: web.Request) -> web.StreamResponse:
    return await _responses(request, dated=True)


async def claude_messages(request: web.Request) -> web.StreamResponse:
    from .anthropic import messages

    return await messages(request)


#: (method, path, handler) for server.make_app, which also mounts them under /s/{scenario}.
ROUTES = [
    ("POST", "/openai/v1/responses", v1_responses),
    ("POST", "/openai/responses", dated_responses),
    ("POST", "/anthropic/v1/messages", claude_messages),
    ("POST", "/openai/deployments/{deployment}/chat/completions", deployment_chat),
    ("POST", "/openai/deployments/{deployment}/embeddings", deployment_embeddings),
    ("POST", "/openai/v1/chat/completions", v1_chat),
    ("POST", "/openai/v1/embeddings", v1_embeddings),
]
