"""Public discovery for developers and agents, no key: `/openapi.json`, `/docs`, `/llms.txt`,
`/.well-known/mcp` (GET manifest, POST public MCP server), `/.well-known/mcp/manifest.json`,
`/developer-resources` and its auth guide page. Every page links the others.

llms.txt format: https://llmstxt.org/. Link relations (service-desc, service-doc): RFC 8631.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from mcp_app.protocol import SUPPORTED_VERSIONS, wants_event_stream_only
from mcp_app.public import TOOL_NAME, public_mcp
from mcp_app.views import mcp_endpoint, server_version
from relay import sandbox

from . import apidocs

CACHE_SECONDS = 3600
LINK_HEADER = ", ".join(
    [
        '</openapi.json>; rel="service-desc"; type="application/json"',
        '</docs>; rel="service-doc"; type="text/html"',
        '</llms.txt>; rel="describedby"; type="text/plain"',
        '</.well-known/mcp/manifest.json>; rel="describedby"; type="application/json"',
    ]
)


def site_links(request: HttpRequest) -> dict[str, str]:
    """Absolute URLs of every public resource, as this request reached the gateway."""
    base = request.build_absolute_uri("/").rstrip("/")
    return {
        "base": base,
        "openapi": f"{base}/openapi.json",
        "docs": f"{base}/docs",
        "llms": f"{base}/llms.txt",
        "developer_resources": f"{base}/developer-resources",
        "auth_guide": f"{base}/developer-resources/auth",
        "mcp": f"{base}/mcp",
        "mcp_public": f"{base}/.well-known/mcp",
        "mcp_manifest": f"{base}/.well-known/mcp/manifest.json",
        "sandbox": f"{base}/sandbox",
        "relay": f"{base}/v1",
    }


def _public(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    response["Link"] = LINK_HEADER
    return response


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """Generated once per process: the routes do not change while it runs."""
    from drf_spectacular.generators import SchemaGenerator

    document: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return document


@require_safe
def openapi_json(request: HttpRequest) -> HttpResponse:
    return _public(JsonResponse(openapi_document(), json_dumps_params={"ensure_ascii": False}))


@require_safe
def docs(request: HttpRequest) -> HttpResponse:
    document = openapi_document()
    context = {
        "info": document["info"],
        "groups": apidocs.operations_by_tag(document),
        "components": apidocs.components(document),
        "security_schemes": document["components"]["securitySchemes"],
        "links": site_links(request),
        "page": "docs",
    }
    return _public(render(request, "discovery/docs.html", context))


@require_safe
def llms_txt(request: HttpRequest) -> HttpResponse:
    response = render(request, "discovery/llms.txt", {"links": site_links(request)}, content_type="text/plain; charset=utf-8")
    return _public(response)


def manifest(request: HttpRequest) -> dict[str, Any]:
    links = site_links(request)
    return {
        "name": "One API",
        "description": "AI API gateway: OpenAI Chat Completions, OpenAI Responses and Claude Messages on one "
        "endpoint, and an MCP gateway whose tools are billed per call to the same key.",
        "version": server_version(),
        "protocolVersions": list(SUPPORTED_VERSIONS),
        "servers": [
            {
                "name": "one-api-mcp-gateway",
                "url": links["mcp"],
                "transport": "streamable-http",
                "authentication": {
                    "type": "bearer",
                    "headers": ["Authorization: Bearer <relay key>", "x-api-key: <relay key>", "api-key: <relay key>"],
                    "documentation": links["auth_guide"],
                },
                "tools": "the tools of the MCP servers the operator configured, named <server>.<tool>",
            },
            {
                "name": "one-api-public-discovery",
                "url": links["mcp_public"],
                "transport": "streamable-http",
                "authentication": {"type": "none"},
                "tools": [TOOL_NAME],
            },
        ],
        "documentation": {
            "openapi": links["openapi"],
            "reference": links["docs"],
            "llms": links["llms"],
            "developer_resources": links["developer_resources"],
            "auth_guide": links["auth_guide"],
            "sandbox": [f"{links['sandbox']}/v1/chat/completions", f"{links['sandbox']}/v1/responses", f"{links['sandbox']}/v1/messages"],
        },
    }


def _manifest_response(request: HttpRequest) -> HttpResponse:
    return _public(JsonResponse(manifest(request), json_dumps_params={"ensure_ascii": False}))


@csrf_exempt
async def well_known_mcp(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return await public_mcp(request, site_links(request))
    if request.method in ("GET", "HEAD"):
        if wants_event_stream_only(request.headers.get("Accept", "")):
            # An MCP client opening its listening stream: this server sends nothing unasked (spec: 405).
            response = HttpResponse(status=405)
            response["Allow"] = "GET, POST"
            return response
        return _manifest_response(request)
    response = HttpResponse(status=405)
    response["Allow"] = "GET, POST"
    return response


@require_safe
def manifest_json(request: HttpRequest) -> HttpResponse:
    return _manifest_response(request)


def _examples(links: dict[str, str]) -> dict[str, str]:
    opencode = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "oneapi": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "One API",
                "options": {"baseURL": links["relay"], "apiKey": "{env:ONEAPI_KEY}"},
                "models": {"gpt-4o-mini": {}},
            }
        },
        "mcp": {
            "oneapi": {"type": "remote", "url": links["mcp"], "headers": {"Authorization": "Bearer {env:ONEAPI_KEY}"}}
        },
    }
    return {"opencode": json.dumps(opencode, indent=2)}


@require_safe
def developer_resources(request: HttpRequest) -> HttpResponse:
    links = site_links(request)
    return _public(render(
        request, "discovery/developer_resources.html", {"links": links, "examples": _examples(links), "page": "resources"}
    ))


@require_safe
def auth_guide(request: HttpRequest) -> HttpResponse:
    return _public(render(request, "discovery/auth.html", {"links": site_links(request), "page": "auth"}))


urlpatterns = [
    path("openapi.json", openapi_json),
    path("docs", docs),
    path("llms.txt", llms_txt),
    re_path(r"^developer-resources/?$", developer_resources),
    re_path(r"^developer-resources/auth/?$", auth_guide),
    re_path(r"^\.well-known/mcp/?$", well_known_mcp),
    path(".well-known/mcp/manifest.json", manifest_json),
    re_path(r"^mcp/?$", mcp_endpoint),
    re_path(r"^sandbox/v1/chat/completions/?$", sandbox.sandbox_chat),
    re_path(r"^sandbox/v1/responses/?$", sandbox.sandbox_responses),
    re_path(r"^sandbox/v1/messages/?$", sandbox.sandbox_messages),
]
