"""The public sandbox: `POST /sandbox/v1/{chat/completions,responses,messages}`.

Free, no key, never calls an upstream: each answer is a fixed mock reply built with the relay's
own converters and stream encoders from the internal representation, so its shape (and every
stream event) is exactly what the real endpoint sends. Requests are checked like the real ones,
so a malformed body gets that format's error. Rate-limited per client IP (a small sliding
window in the Django cache; the general rate limiter can replace it).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from billing.pricing import Usage

from . import ir
from .converters import converter
from .errors import InvalidRequest, RelayError
from .formats import FORMATS

logger = logging.getLogger(__name__)

SANDBOX_MODEL = "oneapi-sandbox"
WINDOW_SECONDS = 60
DEFAULT_LIMIT = 120  # requests per IP per minute; settings.SANDBOX_RATE_LIMIT overrides (0 = off)
ROUTES = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages"}
ID_PREFIX = {"chat": "chatcmpl-sandbox", "responses": "resp_sandbox", "messages": "msg_sandbox"}


def mock_text(format_name: str) -> str:
    return (
        "This is a mock reply from the One API sandbox: free, no key needed, never sent to a model. "
        f"Send the same request to POST {ROUTES[format_name]} with a relay API key for a real answer."
    )


class RateLimited(RelayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


async def check_rate(client_ip: str) -> None:
    """Sliding-window estimate: this minute's count plus the previous minute's, weighted by how
    much of it still lies inside the last 60 seconds."""
    limit = int(getattr(settings, "SANDBOX_RATE_LIMIT", DEFAULT_LIMIT))
    if limit <= 0:
        return
    now = time.time()
    slot = int(now // WINDOW_SECONDS)
    key = f"sandbox-rate:{client_ip}:{slot}"
    await cache.aadd(key, 0, timeout=WINDOW_SECONDS * 2)
    try:
        count = await cache.aincr(key)
    except ValueError:  # the key expired between add and incr
        await cache.aset(key, 1, timeout=WINDOW_SECONDS * 2)
        count = 1
    previous = await cache.aget(f"sandbox-rate:{client_ip}:{slot - 1}", 0)
    weight = 1 - (now % WINDOW_SECONDS) / WINDOW_SECONDS
    if count + previous * weight > limit:
        retry = max(1, math.ceil(WINDOW_SECONDS - now % WINDOW_SECONDS))
        raise RateLimited(
            f"sandbox rate limit: {limit} requests per minute per address", headers={"Retry-After": str(retry)}
        )


def forced_tool(request: ir.Request) -> ir.ToolDef | None:
    """The function tool a request forces (tool_choice required / a named tool), to mock a call."""
    choice = request.tool_choice
    if choice is None or choice.mode not in ("required", "tool"):
        return None
    functions = [t for t in request.tools if t.kind == "function"]
    if choice.mode == "tool":
        return next((t for t in functions if t.name == choice.name), None)
    return functions[0] if functions else None


def mock_response(format_name: str, request: ir.Request) -> ir.Response:
    response_id = f"{ID_PREFIX[format_name]}{uuid.uuid4().hex[:24]}"
    tool = forced_tool(request)
    parts: list[ir.Part]
    if tool is not None:
        call_id = f"call_sandbox{uuid.uuid4().hex[:16]}" if format_name != "messages" else f"toolu_sandbox{uuid.uuid4().hex[:16]}"
        parts, stop = [ir.ToolCallPart(id=call_id, name=tool.name, arguments="{}")], "tool_calls"
    else:
        parts, stop = [ir.TextPart(text=mock_text(format_name))], "stop"
    return ir.Response(id=response_id, model=SANDBOX_MODEL, parts=parts, stop_reason=stop, usage=Usage(), created=int(time.time()))  # type: ignore[arg-type]


def mock_events(response: ir.Response) -> list[ir.StreamEvent]:
    events: list[ir.StreamEvent] = [ir.StreamStart(id=response.id, model=response.model, created=response.created, usage=Usage())]
    for index, part in enumerate(response.parts):
        if isinstance(part, ir.ToolCallPart):
            events += [
                ir.PartStart(index=index, kind="tool_call", tool_call_id=part.id, tool_name=part.name),
                ir.ToolArgsDelta(index=index, arguments=part.arguments),
            ]
        elif isinstance(part, ir.TextPart):
            events.append(ir.PartStart(index=index, kind="text"))
            words = part.text.split(" ")
            events += [ir.TextDelta(index=index, text=w if i == 0 else " " + w) for i, w in enumerate(words)]
        events.append(ir.PartStop(index=index))
    events.append(ir.StreamEnd(stop_reason=response.stop_reason, usage=Usage()))
    return events


def _error(format_name: str, error: RelayError, request_id: str | None) -> HttpResponse:
    body = FORMATS[format_name].render_error(error, request_id)
    response = HttpResponse(body, status=error.status, content_type="application/json")
    for name, value in error.headers.items():
        response[name] = value
    return response


def parse_request(format_name: str, body: bytes) -> ir.Request:
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("the request body is not valid JSON", code="invalid_json") from None
    FORMATS[format_name].validate(payload)
    try:
        return converter(format_name).request_to_ir(payload)
    except ir.ConversionError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None
    except (TypeError, ValueError, KeyError, AttributeError):
        # A shape the converter did not foresee: a client error here (the sandbox must not 500),
        # logged with its traceback so that the converter gets fixed.
        logger.exception("sandbox: the %s converter failed on a request", format_name)
        raise InvalidRequest("the request could not be read: check its fields' types against /openapi.json") from None


async def _stream(format_name: str, request: ir.Request, response: ir.Response) -> AsyncIterator[bytes]:
    encoder = converter(format_name).StreamEncoder(request, response.id, response.model, response.created)
    for event in mock_events(response):
        chunk = encoder.encode(event)
        if chunk:
            yield chunk
    tail = encoder.close()
    if tail:
        yield tail


async def sandbox_reply(request: HttpRequest, format_name: str) -> HttpResponse:
    request_id = getattr(request, "request_id", None)
    try:
        await check_rate(request.META.get("REMOTE_ADDR") or "unknown")
        ir_request = parse_request(format_name, request.body)
    except RelayError as error:
        return _error(format_name, error, request_id)
    response = mock_response(format_name, ir_request)
    if ir_request.stream:
        streamed = StreamingHttpResponse(_stream(format_name, ir_request, response), content_type="text/event-stream")
        streamed["Cache-Control"] = "no-cache"
        streamed["X-Accel-Buffering"] = "no"
        return streamed
    body = converter(format_name).response_from_ir(response, ir_request)
    return HttpResponse(orjson.dumps(body), content_type="application/json")


def _view(format_name: str):  # type: ignore[no-untyped-def]
    @csrf_exempt
    async def view(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            error = RelayError("use POST", status=405, type="invalid_request_error", code="method_not_allowed")
            response = _error(format_name, error, getattr(request, "request_id", None))
            response["Allow"] = "POST"
            return response
        return await sandbox_reply(request, format_name)

    view.__name__ = f"sandbox_{format_name}"
    return view


sandbox_chat = _view("chat")
sandbox_responses = _view("responses")
sandbox_messages = _view("messages")
