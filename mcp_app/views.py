"""`/mcp`: the MCP gateway (Streamable HTTP, JSON-RPC 2.0), authenticated by a relay key.

It aggregates the tools of the upstream MCP servers operators configure (`server.tool`) and
forwards tools/call with the official SDK's client, billing each call to the user's quota.
Async view: a tool call waits on the network, and Django serves async views on the event loop.
Transport rules: https://modelcontextprotocol.io/specification/2025-06-18/basic/transports
"""

from __future__ import annotations

from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from relay.errors import AuthenticationFailed, RelayError
from relay.keyauth import KeyEntry, check_key, extract_key, load_key_entry_sync

from . import protocol as rpc
from . import sessions
from .selectors import visible_tools
from .services import Caller, ToolCallRefused, mcp_tool_call

SESSION_HEADER = "Mcp-Session-Id"
VERSION_HEADER = "MCP-Protocol-Version"
SERVER_NAME = "one-api-mcp-gateway"
INSTRUCTIONS = (
    "Tools of the MCP servers this One API gateway aggregates, named <server>.<tool>. "
    "Each call is billed to the key owner's quota at the server's per-call price."
)


def server_version() -> str:
    try:
        return metadata.version("oneapi-django")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def origin_allowed(request: HttpRequest) -> bool:
    """Refuse cross-site browser requests (DNS rebinding): an Origin, when sent, must be this host
    or a trusted origin. https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#security-warning"""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser: SDKs and agents send no Origin
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    return urlsplit(origin).netloc.lower() == request.get_host().lower()


async def authenticate(request: HttpRequest) -> KeyEntry:
    headers = {name.lower(): value for name, value in request.headers.items()}
    presented = extract_key(headers)
    if presented is None:
        raise AuthenticationFailed("You didn't provide an API key. Send it as 'Authorization: Bearer sk-...'.")
    entry = await sync_to_async(load_key_entry_sync)(presented.digest)
    if entry is None:
        raise AuthenticationFailed("invalid API key")
    check_key(entry, client_ip=request.META.get("REMOTE_ADDR"))
    return entry


def _refusal(error: RelayError) -> HttpResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    code = rpc.UNAUTHORIZED if error.status == 401 else rpc.INVALID_REQUEST
    body = rpc.error_body(None, code, error.message, {"status": error.status, "code": error.code})
    return rpc.json_response(body, status=error.status, headers=headers)


class Gateway:
    """The methods one authenticated caller may use."""

    def __init__(self, entry: KeyEntry, session: sessions.Session | None, request_id: rpc.RequestId | None) -> None:
        self.entry = entry
        self.session = session
        self.request_id = request_id

    def handlers(self) -> dict[str, rpc.Handler]:
        return {"ping": self.ping, "tools/list": self.tools_list, "tools/call": self.tools_call}

    async def ping(self, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def tools_list(self, params: dict[str, Any]) -> dict[str, Any]:
        tools = await sync_to_async(visible_tools)(user_id=self.entry.user_id)
        return {"tools": [tool.as_mcp() for tool in tools]}

    async def tools_call(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        arguments = params.get("arguments")
        if not isinstance(name, str) or not name:
            raise rpc.RpcError(rpc.INVALID_PARAMS, "Invalid params: name must be a tool name (server.tool)")
        if arguments is not None and not isinstance(arguments, dict):
            raise rpc.RpcError(rpc.INVALID_PARAMS, "Invalid params: arguments must be an object")
        if self.session is None or self.request_id is None:
            raise rpc.RpcError(rpc.INVALID_REQUEST, "tools/call needs a session (send initialize first)")
        caller = Caller(
            user_id=self.entry.user_id,
            username=self.entry.username,
            api_key_id=self.entry.key_id,
            key_name=self.entry.key_name,
        )
        try:
            return await mcp_tool_call(
                caller=caller, full_name=name, arguments=arguments, call_id=self.session.call_id(self.request_id)
            )
        except ToolCallRefused as exc:
            raise rpc.RpcError(exc.code, exc.message, exc.data) from None


def _initialize(entry: KeyEntry, message: rpc.Message) -> HttpResponse:
    params = message.params or {}
    version = rpc.negotiate_version(params.get("protocolVersion"))
    token, _ = sessions.issue(key_id=entry.key_id, protocol_version=version)
    result = {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": SERVER_NAME, "title": "One API MCP gateway", "version": server_version()},
        "instructions": INSTRUCTIONS,
    }
    return rpc.json_response(rpc.result_body(message.id, result), headers={SESSION_HEADER: token})


async def _session_for(request: HttpRequest, entry: KeyEntry, msg_id: rpc.RequestId | None) -> sessions.Session | HttpResponse:
    token = request.headers.get(SESSION_HEADER)
    if not token:
        error = rpc.RpcError(rpc.INVALID_REQUEST, f"Bad Request: {SESSION_HEADER} header is required (send initialize first)", id_=msg_id)
        return rpc.rpc_error_response(error, status=400)
    session = await sessions.verify(token, key_id=entry.key_id)
    if session is None:
        # 404 tells the client to start a new session with a fresh initialize.
        return rpc.rpc_error_response(rpc.RpcError(rpc.INVALID_REQUEST, "Session not found", id_=msg_id), status=404)
    return session


@csrf_exempt
async def mcp_endpoint(request: HttpRequest) -> HttpResponse:
    if not origin_allowed(request):
        return rpc.rpc_error_response(rpc.RpcError(rpc.INVALID_REQUEST, "Forbidden: origin not allowed"), status=403)
    try:
        entry = await authenticate(request)
    except RelayError as error:
        return _refusal(error)
    if request.method == "DELETE":
        found = await _session_for(request, entry, None)
        if isinstance(found, HttpResponse):
            return found
        await sessions.end(found)
        return HttpResponse(status=204)
    if request.method != "POST":
        # No server-initiated messages: the listening GET stream is not offered (spec: 405).
        response = HttpResponse(status=405)
        response["Allow"] = "POST, DELETE"
        return response
    if not rpc.accepts_json(request.headers.get("Accept", "")):
        return rpc.rpc_error_response(
            rpc.RpcError(rpc.INVALID_REQUEST, "Not Acceptable: the client must accept application/json"), status=406
        )
    try:
        message = rpc.parse_message(request.body)
    except rpc.RpcError as error:
        return rpc.rpc_error_response(error, status=400)
    if message.kind == "request" and message.method == "initialize":
        return _initialize(entry, message)
    version = request.headers.get(VERSION_HEADER)
    if version is not None and version not in rpc.SUPPORTED_VERSIONS:
        error = rpc.RpcError(rpc.INVALID_REQUEST, f"Bad Request: unsupported {VERSION_HEADER} {version}", id_=message.id)
        return rpc.rpc_error_response(error, status=400)
    found = await _session_for(request, entry, message.id)
    if isinstance(found, HttpResponse):
        return found
    if message.kind != "request":
        return rpc.accepted()
    gateway = Gateway(entry, found, message.id)
    return rpc.json_response(await rpc.dispatch(message, gateway.handlers()))
