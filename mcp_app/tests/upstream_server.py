"""A test upstream MCP server: the official SDK's MCPServer (FastMCP in SDK v1) over Streamable HTTP.

Run as `python upstream_server.py <port> <bearer token>`; requests without that bearer token get
401, so tests see that the gateway forwards the server's credentials.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer

server = MCPServer("test-upstream")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    return text


@server.tool()
def fail(reason: str) -> str:
    """Always fails, with the reason given (a tool failure, reported in-band)."""
    raise ValueError(reason)


@server.tool()
def secret_tool() -> str:
    """An operator hides this one with the server's deny list."""
    return "secret"


def require_bearer(app: Any, token: str) -> Any:
    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": b"missing or wrong bearer token"})
                return
        await app(scope, receive, send)

    return guarded


if __name__ == "__main__":
    port, token = int(sys.argv[1]), sys.argv[2]
    app = server.streamable_http_app(host="127.0.0.1")
    uvicorn.run(require_bearer(app, token), host="127.0.0.1", port=port, log_level="warning")
