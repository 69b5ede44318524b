"""JSON-RPC 2.0 framing for MCP over Streamable HTTP, shared by `/mcp` and the public `/.well-known/mcp`.

References: https://www.jsonrpc.org/specification,
https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#streamable-http
(one JSON-RPC message per POST; notifications and responses answered 202 with no body; requests
answered with one JSON response), and .../basic/lifecycle#version-negotiation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from django.http import HttpResponse

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNAUTHORIZED = -32001  # server-defined: the relay key is missing or refused

# Newest first. The 2026-07-28 revision (stateless envelope, `server/discover`) is not offered:
# clients that probe it get "method not found" and fall back to the initialize handshake.
SUPPORTED_VERSIONS: tuple[str, ...] = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
LATEST_VERSION = SUPPORTED_VERSIONS[0]
# https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#protocol-version-header:
# without the header (and no other way to tell) a server assumes 2025-03-26.
DEFAULT_HEADER_VERSION = "2025-03-26"

RequestId = str | int


def negotiate_version(requested: Any) -> str:
    """The client's version when we speak it, else our latest (the client then decides)."""
    return requested if isinstance(requested, str) and requested in SUPPORTED_VERSIONS else LATEST_VERSION


class RpcError(Exception):
    """A JSON-RPC error; `id_` is the request's id when it could be read."""

    def __init__(self, code: int, message: str, data: Any = None, id_: RequestId | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.id = id_


@dataclass(frozen=True)
class Message:
    kind: Literal["request", "notification", "response"]
    method: str = ""
    id: RequestId | None = None
    params: dict[str, Any] | None = None


def parse_message(body: bytes) -> Message:
    """One JSON-RPC message, or RpcError(-32700 / -32600). Batches (removed in 2025-06-18) are refused."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RpcError(PARSE_ERROR, "Parse error: the body is not valid JSON") from None
    if isinstance(obj, list):
        raise RpcError(INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported")
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'Invalid Request: expected a JSON-RPC 2.0 object ("jsonrpc": "2.0")')
    has_id = "id" in obj
    msg_id = obj.get("id")
    if has_id and (isinstance(msg_id, bool) or not isinstance(msg_id, str | int)):
        raise RpcError(INVALID_REQUEST, "Invalid Request: id must be a string or an integer")
    if "method" in obj:
        method = obj["method"]
        params = obj.get("params")
        if not isinstance(method, str) or not method:
            raise RpcError(INVALID_REQUEST, "Invalid Request: method must be a non-empty string", id_=msg_id)
        if params is not None and not isinstance(params, dict):
            raise RpcError(INVALID_REQUEST, "Invalid Request: params must be an object", id_=msg_id)
        return Message("request" if has_id else "notification", method, msg_id, params)
    if has_id and ("result" in obj or "error" in obj):
        return Message("response", id=msg_id)
    raise RpcError(INVALID_REQUEST, "Invalid Request: neither a request, a notification nor a response")


def result_body(msg_id: RequestId | None, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": result}


def error_body(msg_id: RequestId | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": msg_id, "error": error}


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def accepted() -> HttpResponse:
    return HttpResponse(status=202)


def rpc_error_response(error: RpcError, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return json_response(error_body(error.id, error.code, error.message, error.data), status, headers)


Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def dispatch(message: Message, handlers: dict[str, Handler]) -> dict[str, Any]:
    """Run a request's handler; every failure becomes a JSON-RPC error with the request's id."""
    handler = handlers.get(message.method)
    if handler is None:
        return error_body(message.id, METHOD_NOT_FOUND, f"Method not found: {message.method}")
    try:
        return result_body(message.id, await handler(message.params or {}))
    except RpcError as exc:
        return error_body(message.id, exc.code, exc.message, exc.data)


def wants_event_stream_only(accept: str) -> bool:
    """A GET that asks only for an SSE stream (an MCP client's listening stream), not a document."""
    accept = accept.lower()
    return "text/event-stream" in accept and "application/json" not in accept and "text/html" not in accept


def accepts_json(accept: str) -> bool:
    accept = accept.lower()
    return not accept or any(t in accept for t in ("application/json", "*/*", "application/*"))
