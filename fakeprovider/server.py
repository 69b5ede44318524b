"""aiohttp application of the fake OpenAI-compatible provider.

HTTP layer only (routing, auth, scenarios, recording, delays, aborted
connections); the chat payloads themselves are rendered by
:mod:`fakeprovider.chat`.  Wire formats follow the OpenAI API reference:
https://platform.openai.com/docs/api-reference/chat/create (non-stream),
https://platform.openai.com/docs/api-reference/chat/streaming (chunks),
https://platform.openai.com/docs/api-reference/embeddings/create.

Speed matters (benchmarks hit this at high concurrency), hence orjson,
precomputed bytes for constant bodies, no middleware, no access log.
"""

from __future__ import annotations

import base64
import time
from collections import deque
from itertools import count
from typing import Any

import orjson
from aiohttp import web

from . import content as gen
from .anthropic import ROUTES as ANTHROPIC_ROUTES
from .azure import ROUTES as AZURE_ROUTES
from .bedrock import ROUTES as BEDROCK_ROUTES
from .chat import BadRequest, Chat, completion_body, plan_chat, stream_events
from .common import COUNTER, RECORDS, Rules, cut_events, prelude, send_whole, write_events
from .gemini import ROUTES as GEMINI_ROUTES
from .responses import ROUTES as RESPONSES_ROUTES
from .scenarios import Scenario
from .tokens import count_embedding_tokens
from .vertex import ROUTES as VERTEX_ROUTES

__all__ = ["MODEL_IDS", "make_app"]

MODEL_IDS = ("gpt-4o-mini", "gpt-4o", "fake-model", "text-embedding-3-small")
MAX_RECORDED = 1000
_JSON = "application/json"


def _err_bytes(message: str, type_: str, param: str | None = None, code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


# Constant bodies are serialised once at import.
_FORCED: dict[int, bytes] = {
    429: _err_bytes("Rate limit reached (fake)", "requests", None, "rate_limit_exceeded"),
    500: _err_bytes("fake internal error", "server_error"),
    503: _err_bytes("fake internal error", "server_error"),
    401: _err_bytes("Incorrect API key provided (fake)", "invalid_request_error", None, "invalid_api_key"),
}
_NO_AUTH = _err_bytes(
    "You didn't provide an API key (fake). Send 'Authorization: Bearer <key>'.",
    "invalid_request_error", None, "invalid_api_key",
)
_MODELS = orjson.dumps({
    "object": "list",
    "data": [{"id": m, "object": "model", "created": 1700000000, "owned_by": "fakeprovider"} for m in MODEL_IDS],
})
_OK = orjson.dumps({"ok": True})

def _raw(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, content_type=_JSON, headers=headers)


def _bad_request(message: str, param: str | None = None) -> web.Response:
    return _raw(_err_bytes(message, "invalid_request_error", param), 400)


# --------------------------------------------------------------------------
# Chat completions
# --------------------------------------------------------------------------
def _bearer_auth(request: web.Request) -> web.Response | None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return _raw(_NO_AUTH, 401)
    return None


def _forced(status: int) -> web.Response:
    return _raw(_FORCED[status], status, {"Retry-After": "1"} if status == 429 else None)


#: OpenAI's auth rule and error shapes (also the Responses mode's).
OPENAI_RULES = Rules(
    scenario_error=_bad_request,
    forced=_forced,
    auth=_bearer_auth,
    bad_json=lambda: _bad_request("We could not parse the JSON body of your request (fake)."),
)


async def _send_stream(
    request: web.Request, chat: Chat, cid: str, created: int, sc: Scenario, include_usage: bool
) -> web.StreamResponse:
    events = cut_events(*stream_events(chat, cid, created, sc, include_usage), sc)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    return await write_events(request, resp, events, sc)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    pre = await prelude(request, OPENAI_RULES)
    if isinstance(pre, web.Response):
        return pre
    sc, body = pre
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
    return await send_whole(request, completion_body(chat, cid, created, sc), sc)


# --------------------------------------------------------------------------
# Embeddings, models
# --------------------------------------------------------------------------
def _embedding_items(value: Any) -> list[str | list[int]] | None:
    """Normalise the four accepted ``input`` shapes; None when invalid."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return None

    def is_ids(x: Any) -> bool:
        return isinstance(x, list) and bool(x) and all(isinstance(i, int) and not isinstance(i, bool) for i in x)

    if is_ids(value):
        return [value]
    if all(isinstance(x, str) or is_ids(x) for x in value):
        return value
    return None


async def embeddings(request: web.Request) -> web.Response:
    pre = await prelude(request, OPENAI_RULES)
    if isinstance(pre, web.Response):
        return pre
    _, body = pre
    if not isinstance(body, dict):
        return _bad_request("Request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _bad_request("you must provide a model parameter", "model")
    if body.get("input") is None:
        return _bad_request("Missing required parameter: 'input'.", "input")
    return embedding_answer(body, model)


def embedding_answer(body: dict[str, Any], model: str) -> web.Response:
    """The embeddings answer for a JSON-object *body* once *model* is known (also Azure's)."""
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
    return _raw(orjson.dumps({
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))


async def models(request: web.Request) -> web.Response:
    pre = await prelude(request, OPENAI_RULES)
    return pre if isinstance(pre, web.Response) else _raw(_MODELS)


# --------------------------------------------------------------------------
# Inspection routes (no auth, no scenario prefix)
# --------------------------------------------------------------------------
async def get_requests(request: web.Request) -> web.Response:
    return _raw(orjson.dumps(list(request.app.get(RECORDS) or ())))


async def clear_requests(request: web.Request) -> web.Response:
    records = request.app.get(RECORDS)
    if records is not None:
        records.clear()
    return _raw(_OK)


async def health(request: web.Request) -> web.Response:
    return _raw(_OK)


# A 1x1 red PNG: the image an end-to-end test gives the gateway by URL (relay.media fetches it).
TINY_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==")


async def tiny_png(request: web.Request) -> web.Response:
    return web.Response(body=TINY_PNG, content_type="image/png")


def make_app(record: bool = True) -> web.Application:
    """Build the application; *record* keeps the last 1000 API requests for ``/_requests``."""
    app = web.Application(client_max_size=64 * 1024 * 1024)  # prompts with inline images are big
    if record:
        app[RECORDS] = deque(maxlen=MAX_RECORDED)
    app[COUNTER] = count(1)
    routes = [
        ("POST", "/v1/chat/completions", chat_completions),
        ("POST", "/v1/embeddings", embeddings),
        ("GET", "/v1/models", models),
        *ANTHROPIC_ROUTES,
        *GEMINI_ROUTES,
        *AZURE_ROUTES,
        *VERTEX_ROUTES,
        *BEDROCK_ROUTES,
        *RESPONSES_ROUTES,
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, "/s/{scenario}" + path, handler)
    app.router.add_get("/_requests", get_requests)
    app.router.add_delete("/_requests", clear_requests)
    app.router.add_get("/_health", health)
    app.router.add_get("/_media/tiny.png", tiny_png)
    return app
