"""Public discovery: the OpenAPI document, the rendered reference, llms.txt, the MCP manifest and
the public MCP server, the developer pages. No key anywhere."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

RELAY_PATHS = ["/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/messages/count_tokens", "/v1/embeddings"]


@pytest.fixture
def client() -> Client:
    return Client()


def test_openapi_document(client: Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    for path in RELAY_PATHS:
        operation = doc["paths"][path]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].startswith("#/components/schemas/")
        assert {"relayBearer", "relayXApiKey", "relayApiKey"} == {name for req in operation["security"] for name in req}
    assert doc["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"].keys() == {
        "application/json",
        "text/event-stream",
    }
    for path in ("/sandbox/v1/chat/completions", "/sandbox/v1/responses", "/sandbox/v1/messages"):
        assert doc["paths"][path]["post"]["security"] == []
    assert {"/mcp", "/.well-known/mcp", "/llms.txt", "/docs", "/developer-resources", "/api/token"} <= doc["paths"].keys()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["relayXApiKey"] == {**schemes["relayXApiKey"], "in": "header", "name": "x-api-key"}
    assert schemes["relayApiKey"]["name"] == "api-key" and schemes["relayBearer"]["scheme"] == "bearer"
    token_get = doc["paths"]["/api/token/{key_id}"]["get"]
    assert token_get["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]
    assert {"accessToken"} <= {name for req in token_get["security"] for name in req}


def test_every_ref_resolves(client: Client) -> None:
    doc = client.get("/openapi.json").json()
    refs: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"].rsplit("/", 1)[-1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs and refs <= doc["components"]["schemas"].keys()


def test_docs_page_is_rendered_locally(client: Client) -> None:
    response = client.get("/docs")
    html = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert "/v1/chat/completions" in html and "ChatCompletionRequest" in html and "x-api-key" in html
    assert "/static/docs/site.css" in html and "https://cdn" not in html and "<script" not in html
    assert 'rel="service-desc"' in response["Link"]


def test_llms_txt(client: Client) -> None:
    response = client.get("/llms.txt")
    text = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert text.startswith("# One API") and "\n> " in text
    for needle in ("http://testserver/openapi.json", "/sandbox/v1/messages", "http://testserver/mcp", "/developer-resources/auth"):
        assert needle in text
    assert "&amp;" not in text


@pytest.mark.parametrize("path", ["/.well-known/mcp", "/.well-known/mcp/manifest.json"])
def test_mcp_manifest(client: Client, path: str) -> None:
    manifest = client.get(path).json()
    urls = [server["url"] for server in manifest["servers"]]
    assert urls == ["http://testserver/mcp", "http://testserver/.well-known/mcp"]
    assert manifest["servers"][0]["authentication"]["type"] == "bearer"
    assert manifest["documentation"]["openapi"] == "http://testserver/openapi.json"


def _public_rpc(client: Client, body: dict[str, Any]) -> Any:
    return client.post("/.well-known/mcp", data=orjson.dumps(body), content_type="application/json")


def test_public_mcp_server(client: Client) -> None:
    init = _public_rpc(client, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}})
    assert init.json()["result"]["protocolVersion"] == "2025-06-18" and "Mcp-Session-Id" not in init
    assert _public_rpc(client, {"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
    tools = _public_rpc(client, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).json()["result"]["tools"]
    assert [t["name"] for t in tools] == ["one_api_public_docs"]
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "one_api_public_docs", "arguments": {"topic": "sandbox"}}}
    result = _public_rpc(client, call).json()["result"]
    assert result["isError"] is False and "/sandbox/v1/chat/completions" in result["content"][0]["text"]
    overview = {**call, "params": {"name": "one_api_public_docs"}}
    assert "/openapi.json" in _public_rpc(client, overview).json()["result"]["content"][0]["text"]
    bad_topic = {**call, "params": {"name": "one_api_public_docs", "arguments": {"topic": "x"}}}
    assert _public_rpc(client, bad_topic).json()["error"]["code"] == -32602
    assert _public_rpc(client, {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "x"}}).json()["error"]["code"] == -32602
    assert client.post("/.well-known/mcp", data=b"[", content_type="application/json").json()["error"]["code"] == -32700
    assert client.get("/.well-known/mcp", headers={"Accept": "text/event-stream"}).status_code == 405


def test_developer_pages(client: Client) -> None:
    page = client.get("/developer-resources").content.decode()
    for needle in (
        "/openapi.json",
        "/developer-resources/auth",
        "/docs",
        "/.well-known/mcp/manifest.json",
        "/.well-known/mcp",
        "/sandbox/v1/chat/completions",
        "from openai import OpenAI",
        "from anthropic import Anthropic",
        "ANTHROPIC_BASE_URL",
        "model_providers.oneapi",
        "@ai-sdk/openai-compatible",
        "claude mcp add",
    ):
        assert needle in page, needle
    assert "https://cdn" not in page and "&quot;$schema&quot;" in page
    auth = client.get("/developer-resources/auth").content.decode()
    for needle in ("Authorization: Bearer sk-", "x-api-key", "api-key", "insufficient_user_quota", "401", "429"):
        assert needle in auth, needle


def test_discovery_routes_are_not_under_the_v1_catch_all(client: Client) -> None:
    assert client.post("/sandbox/v1/chat/completions", data=b"{}", content_type="application/json").json()["error"]["param"] == "model"
    assert client.post("/v1/unknown", data=b"{}", content_type="application/json").status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "reply", "event"),
    [
        ("chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, "ChatCompletion", "ChatCompletionChunk"),
        ("responses", {"input": "hi"}, "Response", "ResponseStreamEvent"),
        ("messages", {"max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}, "Message", "MessageStreamEvent"),
    ],
)
def test_sandbox_replies_match_the_document(client: Client, path: str, body: dict[str, Any], reply: str, event: str) -> None:
    from django.core.cache import cache
    from jsonschema import Draft202012Validator

    cache.clear()
    doc = client.get("/openapi.json").json()

    def validator(name: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})

    request = {"model": "m", **body}
    request_errors = list(validator(doc["paths"][f"/v1/{path}"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]).iter_errors(request))
    assert not request_errors
    response = client.post(f"/sandbox/v1/{path}", data=orjson.dumps(request), content_type="application/json")
    validator(reply).validate(response.json())
    streamed = client.post(f"/sandbox/v1/{path}", data=orjson.dumps({**request, "stream": True}), content_type="application/json")
    assert streamed["Content-Type"] == "text/event-stream"
    async def collect() -> bytes:
        return b"".join([chunk async for chunk in streamed.streaming_content])

    frames = asyncio.run(collect()).decode().split("\n\n")
    payloads = [line[6:] for frame in frames for line in frame.split("\n") if line.startswith("data: ")]
    assert payloads
    for data in payloads:
        if data != "[DONE]":
            validator(event).validate(orjson.loads(data))
