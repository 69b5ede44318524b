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

import time

import orjson
from aiohttp import web

from .chat import BadRequest, Chat, completion_body, plan_chat, stream_events
from .common import COUNTER, Rules, cut_events, prelude, send_whole, write_events
from .scenarios import Scenario

__all__ = ["ROUTES", "PROMPT_FILTER_RESULTS"]

_JSON = "application/json"
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


def _auth(request: web.Request, deployment_api: bool) -> web.Response | None:
    key = request.headers.get("api-key", "").strip()
    if not key and not deployment_api:  # the v1 API also takes the key as a bearer token
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not key:
        return _azure_error(401, _DENIED)
    if deployment_api and not request.query.get("api-version", "").strip():
        return _azure_error(404, "Resource not found")
    return None


def _rules(deployment_api: bool) -> Rules:
    """server's OpenAI rules with Azure's auth (and api-version) and error shape."""
    return Rules(
        scenario_error=_bad_request,
        forced=lambda status: _azure_error(status, _FORCED[status], "429" if status == 429 else None),
        auth=lambda request: _auth(request, deployment_api),
        bad_json=lambda: _bad_request("We could not parse the JSON body of your request (fake)."),
        query=True,
    )


#: By ``deployment_api``: the deployment API's rules, the v1 API's.
_RULES = {True: _rules(True), False: _rules(False)}


async def _send_stream(request: web.Request, chat: Chat, cid: str, created: int, sc: Scenario,
                       include_usage: bool) -> web.StreamResponse:
    head, body, tail = stream_events(chat, cid, created, sc, include_usage)
    filters = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
               "prompt_filter_results": PROMPT_FILTER_RESULTS}
    head = [b"data: " + orjson.dumps(filters) + b"\n\n", *head]
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    return await write_events(request, resp, cut_events(head, body, tail, sc), sc)


async def _chat(request: web.Request, *, deployment_api: bool) -> web.StreamResponse:
    pre = await prelude(request, _RULES[deployment_api])
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
    return await send_whole(request, orjson.dumps(answer), sc)


async def _embeddings(request: web.Request, *, deployment_api: bool) -> web.Response:
    from .server import embedding_answer  # late: server.py imports this module for its routes

    pre = await prelude(request, _RULES[deployment_api])
    if isinstance(pre, web.Response):
        return pre
    _, body = pre
    if not isinstance(body, dict):
        return _bad_request("Request body must be a JSON object.")
    model = request.match_info["deployment"] if deployment_api else body.get("model")
    if not isinstance(model, str) or not model:
        return _bad_request("you must provide a model parameter", "model")
    return embedding_answer(body, model)


async def _responses(request: web.Request, *, dated: bool) -> web.StreamResponse:
    """The Responses mode's answer (:mod:`fakeprovider.responses`) behind Azure's auth."""
    from . import responses

    pre = await prelude(request, _RULES[dated])
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
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        return await write_events(request, resp, cut_events(*responses.stream_events(plan, n, created, sc), sc), sc)
    return await send_whole(request, responses.response_body(plan, n, created, sc), sc)


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
