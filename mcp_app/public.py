"""POST `/.well-known/mcp`: a public, read-only MCP server (no key, no session) for agents that
discover the gateway. Its one tool says where the docs, the sandbox and the endpoints are.

Stateless: no `Mcp-Session-Id` is issued, which the transport allows
(https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#session-management).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse

from . import protocol as rpc
from .views import server_version

TOOL_NAME = "one_api_public_docs"
TOPICS = ("overview", "auth", "endpoints", "sandbox", "mcp", "docs")

TOOL = {
    "name": TOOL_NAME,
    "title": "Where things are on this One API gateway",
    "description": "Answers where the API docs, the OpenAPI document, the free sandbox and the "
    "authenticated endpoints of this gateway are, and how to authenticate.",
    "inputSchema": {
        "type": "object",
        "properties": {"topic": {"type": "string", "enum": list(TOPICS), "description": "What to ask about."}},
        "additionalProperties": False,
    },
    "annotations": {"readOnlyHint": True, "openWorldHint": False},
}


def answer(topic: str, links: Mapping[str, str]) -> str:
    sections = {
        "docs": (
            f"API reference: {links['docs']}\nOpenAPI 3.1 document: {links['openapi']}\n"
            f"llms.txt: {links['llms']}\nDeveloper resources: {links['developer_resources']}"
        ),
        "auth": (
            f"Send a relay key (sk-...) as 'Authorization: Bearer <key>', 'x-api-key: <key>' or "
            f"'api-key: <key>'. Keys are created on the web pages or with the management API. "
            f"Auth guide: {links['auth_guide']}"
        ),
        "endpoints": (
            f"OpenAI Chat Completions: POST {links['base']}/v1/chat/completions\n"
            f"OpenAI Responses: POST {links['base']}/v1/responses\n"
            f"Claude Messages: POST {links['base']}/v1/messages\n"
            f"Embeddings: POST {links['base']}/v1/embeddings\nModels: GET {links['base']}/v1/models"
        ),
        "sandbox": (
            "Free mock replies in the real formats, no key, never billed: "
            f"POST {links['sandbox']}/v1/chat/completions, {links['sandbox']}/v1/responses, "
            f"{links['sandbox']}/v1/messages (stream: true works too)."
        ),
        "mcp": (
            f"Authenticated MCP gateway (Streamable HTTP, relay key): {links['mcp']}. "
            f"Tools are named <server>.<tool> and billed per call. Manifest: {links['mcp_manifest']}"
        ),
    }
    if topic == "overview":
        return "\n\n".join(sections.values())
    return sections.get(topic, sections["docs"])


async def public_mcp(request: HttpRequest, links: Mapping[str, str]) -> HttpResponse:
    try:
        message = rpc.parse_message(request.body)
    except rpc.RpcError as error:
        return rpc.rpc_error_response(error, status=400)
    if message.kind != "request":
        return rpc.accepted()

    async def initialize(params: dict[str, Any]) -> dict[str, Any]:
        return {
            "protocolVersion": rpc.negotiate_version(params.get("protocolVersion")),
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "one-api-public-discovery", "title": "One API public discovery", "version": server_version()},
            "instructions": f"Call {TOOL_NAME} to learn where the docs, sandbox and endpoints are.",
        }

    async def ping(params: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def tools_list(params: dict[str, Any]) -> dict[str, Any]:
        return {"tools": [TOOL]}

    async def tools_call(params: dict[str, Any]) -> dict[str, Any]:
        if params.get("name") != TOOL_NAME:
            raise rpc.RpcError(rpc.INVALID_PARAMS, f"Unknown tool: {params.get('name')}")
        arguments = params.get("arguments") or {}
        topic = arguments.get("topic", "overview") if isinstance(arguments, dict) else "overview"
        if topic not in TOPICS:
            raise rpc.RpcError(rpc.INVALID_PARAMS, f"Invalid params: topic must be one of {', '.join(TOPICS)}")
        return {"content": [{"type": "text", "text": answer(topic, links)}], "isError": False}

    handlers = {"initialize": initialize, "ping": ping, "tools/list": tools_list, "tools/call": tools_call}
    return rpc.json_response(await rpc.dispatch(message, handlers))
