"""`/openapi.json`: drf-spectacular describes the DRF views (management API, `/v1/models`, stored
responses); the hooks here add what is not a DRF view, by hand: the hot relay routes (served by
`relay.app`), the sandbox, the MCP endpoints and the discovery pages, with security schemes for
the three relay-key headers, the management access token and the session cookie.

drf-spectacular hooks: https://drf-spectacular.readthedocs.io/en/latest/customization.html
(PREPROCESSING_HOOKS / POSTPROCESSING_HOOKS, OpenApiAuthenticationExtension).
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from .openapi_jsonrpc import JSONRPC
from .openapi_management import MANAGEMENT_COMPONENTS  # importing it registers the view extensions
from .openapi_schemas import COMPONENTS, Schema, ref

RELAY_SECURITY = [{"relayBearer": []}, {"relayXApiKey": []}, {"relayApiKey": []}]
MANAGEMENT_SECURITY = [{"accessToken": []}, {"cookieAuth": []}]

SECURITY_SCHEMES: dict[str, Schema] = {
    "relayBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A relay key: `Authorization: Bearer sk-...` (OpenAI SDKs, Codex CLI, OpenCode).",
    },
    "relayXApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "A relay key in `x-api-key` (Anthropic SDKs, Claude Code).",
    },
    "relayApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "api-key",
        "description": "A relay key in `api-key` (Azure-style clients).",
    },
    "accessToken": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The management access token (GET /api/user/token), as `Authorization: <token>` or "
        "`Authorization: Bearer <token>`.",
    },
    "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "session", "description": "A signed-in web session."},
}


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.AccessTokenAuthentication"
    match_subclasses = True
    name = "accessToken"

    def get_security_definition(self, auto_schema: Any) -> Schema:
        return SECURITY_SCHEMES["accessToken"]


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.CsrfSessionAuthentication"
    name = "cookieAuth"
    priority = 1

    def get_security_definition(self, auto_schema: Any) -> Schema:
        return SECURITY_SCHEMES["cookieAuth"]


class RelayKeyScheme(OpenApiAuthenticationExtension):
    target_class = "relay.authentication.RelayKeyAuthentication"
    match_subclasses = True
    name = ["relayBearer", "relayXApiKey", "relayApiKey"]

    def get_security_definition(self, auto_schema: Any) -> list[Schema]:
        return [SECURITY_SCHEMES[n] for n in self.name]


def keep_documented_endpoints(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    """Drop the JSON 404 catch-alls (`/api/...`, `/v1/...` with any path): they are not endpoints."""
    return [e for e in endpoints if not e[0].rstrip("/").endswith(("{path}", "/v1", "/api")) and ".*" not in e[1]]


def _content(schema: Schema, media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": schema}}


def _response(description: str, schema: Schema | None = None, media: str = "application/json", **extra: Any) -> Schema:
    response: Schema = {"description": description, **extra}
    if schema is not None:
        response["content"] = _content(schema, media)
    return response


def _errors(error: str, *statuses: int) -> dict[str, Schema]:
    words = {
        400: "Invalid request",
        401: "Missing or invalid key",
        403: "Refused (quota, model, address)",
        404: "Not found",
        405: "Method not allowed",
        413: "Request too large",
        429: "Rate limited (see Retry-After)",
        500: "Gateway error",
        502: "Upstream error",
        503: "No channel serves the model",
        504: "Upstream timeout",
    }
    return {str(s): _response(words[s], ref(error)) for s in statuses}


RELAY_ROUTES: list[tuple[str, str, str, str, str, str, str | None]] = [
    # path, tag, summary, request component, response component, error component, stream event component
    ("/v1/chat/completions", "Relay", "Create a chat completion (OpenAI Chat Completions)", "ChatCompletionRequest", "ChatCompletion", "OpenAIError", "ChatCompletionChunk"),
    ("/v1/responses", "Relay", "Create a model response (OpenAI Responses)", "ResponsesRequest", "Response", "OpenAIError", "ResponseStreamEvent"),
    ("/v1/messages", "Relay", "Create a message (Claude Messages)", "MessagesRequest", "Message", "AnthropicError", "MessageStreamEvent"),
    ("/v1/messages/count_tokens", "Relay", "Count the input tokens of a Claude Messages request", "CountTokensRequest", "CountTokensResponse", "AnthropicError", None),
    ("/v1/embeddings", "Relay", "Create embeddings (OpenAI)", "EmbeddingRequest", "EmbeddingList", "OpenAIError", None),
]


def _operation_id(method: str, path: str) -> str:
    return method + "_" + re.sub(r"[^a-zA-Z0-9]+", "_", path).strip("_")


def sse_event(component: str) -> Schema:
    """One server-sent event, as OpenAPI 3.2's `itemSchema` models them (and schemathesis checks
    them): `event` and `data`, the data being JSON of the component (Chat ends with `[DONE]`)."""
    data: Schema = {"type": "string", "contentMediaType": "application/json", "contentSchema": ref(component)}
    if component == "ChatCompletionChunk":
        data = {"anyOf": [{"const": "[DONE]"}, {**data, "contentSchema": {"anyOf": [ref(component), ref("OpenAIError")]}}]}
    return {
        "type": "object",
        "description": f"Each event of the stream (`stream: true`); its data is a {component} in JSON.",
        "properties": {"event": {"type": "string"}, "data": data, "id": {"type": "string"}},
        "required": ["data"],
    }


def _ok_with_stream(response: str, stream: str | None) -> Schema:
    ok = _response("The reply (`stream: false`)", ref(response))
    if stream:
        ok["content"]["text/event-stream"] = {"schema": sse_event(stream)}
        ok["description"] = "The reply: JSON, or an event stream when `stream: true`"
    return ok


def relay_paths() -> dict[str, Schema]:
    paths: dict[str, Schema] = {}
    for path, tag, summary, request, response, error, stream in RELAY_ROUTES:
        paths[path] = {
            "post": {
                "operationId": _operation_id("post", path),
                "tags": [tag],
                "summary": summary,
                "security": RELAY_SECURITY,
                "requestBody": {"required": True, "content": _content(ref(request))},
                "responses": {
                    "200": _ok_with_stream(response, stream),
                    **_errors(error, 400, 401, 403, 404, 413, 429, 500, 502, 503, 504),
                },
            }
        }
    for path, _tag, summary, request, response, error, stream in RELAY_ROUTES[:3]:
        sandbox_path = "/sandbox" + path
        paths[sandbox_path] = {
            "post": {
                "operationId": _operation_id("post", sandbox_path),
                "tags": ["Sandbox"],
                "summary": "Sandbox: " + summary[0].lower() + summary[1:] + " (mock, free, no key)",
                "description": "A fixed mock reply of the real shape; never calls a model and is never billed. "
                "Checked like the real endpoint, so a malformed request gets the same error. Rate-limited per address.",
                "security": [],
                "requestBody": {"required": True, "content": _content(ref(request))},
                "responses": {"200": _ok_with_stream(response, stream), **_errors(error, 400, 405, 429)},
            }
        }
    return paths


_HTML = {"type": "string", "description": "An HTML page."}
# The per-address limiters (GLOBAL_WEB_RATE_LIMIT, the sandbox's own) answer 429 with Retry-After.
RATE_LIMITED: Schema = {"description": "Rate limited: retry after the Retry-After header's seconds"}
_TEXT = {"type": "string"}


def _page(summary: str, media: str, schema: Schema, tag: str = "Discovery") -> Schema:
    return {
        "get": {
            "operationId": "",
            "tags": [tag],
            "summary": summary,
            "security": [],
            "responses": {"200": _response(summary, schema, media), "429": RATE_LIMITED},
        }
    }


def discovery_paths() -> dict[str, Schema]:
    rpc_body = {"required": True, "content": _content(ref("JsonRpcMessage"))}
    rpc_ok = _response("The JSON-RPC response", ref("JsonRpcResponse"))
    rpc_error = _response("A JSON-RPC error", ref("JsonRpcResponse"))
    paths: dict[str, Schema] = {
        "/openapi.json": _page("This OpenAPI 3.1 document", "application/json", {"type": "object"}),
        "/docs": _page("The API reference, rendered from this document", "text/html", _HTML),
        "/llms.txt": _page("A summary for language models (llmstxt.org)", "text/plain", _TEXT),
        "/developer-resources": _page("Links to every resource for developers and agents", "text/html", _HTML),
        "/developer-resources/auth": _page("The authentication guide", "text/html", _HTML),
        "/.well-known/mcp/manifest.json": _page("The MCP manifest", "application/json", ref("McpManifest"), "MCP"),
        "/.well-known/mcp": {
            **_page("The MCP manifest", "application/json", ref("McpManifest"), "MCP"),
            "post": {
                "operationId": "",
                "tags": ["MCP"],
                "summary": "The public, read-only MCP server (Streamable HTTP, no key)",
                "description": "One tool, `one_api_public_docs`, answers where the docs, sandbox and endpoints are. "
                "Notifications get 202 with no body.",
                "security": [],
                "requestBody": rpc_body,
                "responses": {
                    "200": rpc_ok,
                    "202": {"description": "A notification was accepted"},
                    "400": rpc_error,
                    "429": RATE_LIMITED,
                },
            },
        },
        "/mcp": {
            "post": {
                "operationId": "",
                "tags": ["MCP"],
                "summary": "The MCP gateway (Streamable HTTP, JSON-RPC 2.0)",
                "description": "initialize (returns `Mcp-Session-Id`, required on every later request), ping, "
                "tools/list (tools named `server.tool`), tools/call (billed per call from the user's quota). "
                "Notifications get 202.",
                "security": RELAY_SECURITY,
                "parameters": [
                    {"name": "Mcp-Session-Id", "in": "header", "required": False, "schema": {"type": "string"}},
                    {"name": "MCP-Protocol-Version", "in": "header", "required": False, "schema": {"type": "string"}},
                ],
                "requestBody": rpc_body,
                "responses": {
                    "200": {**rpc_ok, "headers": {"Mcp-Session-Id": {"schema": {"type": "string"}}}},
                    "202": {"description": "A notification or response was accepted"},
                    "400": rpc_error,
                    "401": rpc_error,
                    "403": rpc_error,
                    "404": _response("Unknown or ended session: initialize again", ref("JsonRpcResponse")),
                    "406": rpc_error,
                    "429": RATE_LIMITED,
                },
            },
            "delete": {
                "operationId": "",
                "tags": ["MCP"],
                "summary": "End an MCP session",
                "security": RELAY_SECURITY,
                "parameters": [{"name": "Mcp-Session-Id", "in": "header", "required": False, "schema": {"type": "string"}}],
                "responses": {
                    "204": {"description": "The session ended"},
                    "400": rpc_error,
                    "401": rpc_error,
                    "403": rpc_error,
                    "404": rpc_error,
                },
            },
        },
    }
    for path, item in paths.items():
        for method, operation in item.items():
            operation["operationId"] = _operation_id(method, path)
    return paths


def _tidy_path(path: str) -> str:
    # Routes accept an optional trailing slash; the document names each once, without it.
    return path.rstrip("/") if path != "/" else path


def _split_relay_requirement(operation: Schema) -> None:
    # drf-spectacular lists one authenticator's several schemes as one requirement (all at once);
    # a relay key goes in any one of the three headers.
    security = operation.get("security")
    if not security:
        return
    split: list[dict[str, list[str]]] = []
    for requirement in security:
        if len(requirement) > 1 and set(requirement) <= {"relayBearer", "relayXApiKey", "relayApiKey"}:
            split.extend({name: []} for name in requirement)
        else:
            split.append(requirement)
    operation["security"] = split


ENVELOPE_RESPONSE: Schema = _response("The original's envelope; `success` false with a message on failure", ref("Envelope"))


def _envelope_fallback(operation: Schema) -> None:
    """A management view nobody described yet still answers the envelope, with the original's
    statuses (200 also for refused input, 401, 403, 404): say so rather than "no body"."""
    responses = operation.setdefault("responses", {})
    if "204" in responses and "content" not in responses["204"]:
        del responses["204"]  # these views answer `ok()`: 200 with the envelope
    if "content" not in responses.get("200", {}):
        responses["200"] = ENVELOPE_RESPONSE
    for status in ("401", "403", "404", "429"):
        responses.setdefault(status, ENVELOPE_RESPONSE)


def complete_document(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    paths = {_tidy_path(p): item for p, item in result.get("paths", {}).items()}
    for path, item in paths.items():
        for operation in item.values():
            _split_relay_requirement(operation)
            if path.startswith("/api/"):
                operation.setdefault("tags", ["Management"])
                _envelope_fallback(operation)
    paths.update(relay_paths())
    paths.update(discovery_paths())
    result["paths"] = dict(sorted(paths.items()))
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update({**COMPONENTS, **JSONRPC, **MANAGEMENT_COMPONENTS})
    components["securitySchemes"] = {**components.get("securitySchemes", {}), **SECURITY_SCHEMES}
    result["tags"] = [
        {"name": "Relay", "description": "The AI endpoints: a relay key, the caller's format in and out."},
        {"name": "Sandbox", "description": "Free mock replies of the relay formats: no key, never billed."},
        {"name": "MCP", "description": "The MCP gateway and the public discovery server."},
        {"name": "Discovery", "description": "Public documents for developers and agents."},
        {"name": "Management", "description": "The original One API's management API (`/api`)."},
    ]
    result["info"]["license"] = {"name": "MIT", "identifier": "MIT"}
    return result
