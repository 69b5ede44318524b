"""OpenAPI components for the MCP endpoints: JSON-RPC 2.0 messages (https://www.jsonrpc.org/specification)
and the MCP manifest served at /.well-known/mcp."""

from __future__ import annotations

from .openapi_schemas import ANY_OBJECT, INT, Schema, arr, const, nullable, obj, string

_RPC_ID = {"anyOf": [string(), INT]}
JSONRPC: dict[str, Schema] = {
    "JsonRpcMessage": obj(
        {"jsonrpc": const("2.0"), "id": _RPC_ID, "method": string(minLength=1), "params": ANY_OBJECT},
        ("jsonrpc", "method"),
        description="A JSON-RPC 2.0 request (with `id`) or notification (without): initialize, ping, "
        "tools/list, tools/call, notifications/initialized, ...",
    ),
    "JsonRpcResponse": {
        "oneOf": [
            obj({"jsonrpc": const("2.0"), "id": nullable(_RPC_ID), "result": ANY_OBJECT}, ("jsonrpc", "id", "result")),
            obj(
                {
                    "jsonrpc": const("2.0"),
                    "id": nullable(_RPC_ID),
                    "error": obj({"code": INT, "message": string(), "data": {}}, ("code", "message")),
                },
                ("jsonrpc", "id", "error"),
            ),
        ]
    },
    "McpManifest": obj(
        {
            "name": string(),
            "description": string(),
            "version": string(),
            "protocolVersions": arr(string()),
            "servers": arr(obj({"url": string(), "transport": string(), "authentication": ANY_OBJECT}, ("url", "transport"))),
            "documentation": ANY_OBJECT,
        },
        ("name", "servers"),
    ),
}
