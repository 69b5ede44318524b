"""Google Vertex AI (channel type 42): Gemini models, and Claude models as partner models.

Endpoints, `{host}` being `https://{region}-aiplatform.googleapis.com` (`https://aiplatform.googleapis.com`
for the "global" region) or the channel's base URL:
- Gemini: `{host}/v1/projects/{project}/locations/{region}/publishers/google/models/{model}:generateContent`
  and `:streamGenerateContent?alt=sse` (without alt=sse Google streams one JSON array), with the
  Gemini API's GenerateContentRequest body
  (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference).
- Claude (a model whose name starts with "claude", e.g. "claude-sonnet-4-5@20250929"):
  `.../publishers/anthropic/models/{model}:rawPredict` and `:streamRawPredict`, with an Anthropic
  Messages body without `model` (it is in the URL) and with `"anthropic_version":
  "vertex-2023-10-16"`; beta features go in the body's `anthropic_beta` list, not in a header
  (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude,
  https://docs.anthropic.com/en/api/claude-on-vertex-ai).

Auth: an OAuth access token from the channel's service-account key (relay.adaptors.vertex.auth).
Config: `region` (default us-central1), `vertex_ai_project_id` (default: the key's project_id),
`vertex_ai_adc` (the key JSON, where the original one-api kept it), `safety_settings` /
`safety_setting` (as for Gemini channels), `anthropic_beta` (comma-separated beta names).

No caller speaks either body as is (a Messages caller's body has `model` and lacks
`anthropic_version`), so every request is converted: the wire is always "vertex", and the
model says which protocol it is. Answers are read by the model when the relay passes it, else
by their shape (a GenerateContentResponse has `candidates`; an Anthropic stream opens with
`event: message_start`), so this works whether or not the relay passes `model` to decoders.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import orjson

from ... import ir
from ...converters import converter
from ...errors import UpstreamError
from ...snapshot import ChannelEntry
from ..base import Adaptor, StreamDecoder
from ..gemini.stream import GeminiStreamDecoder
from ..gemini.wire import request_from_ir as gemini_request
from ..gemini.wire import response_to_ir as gemini_response
from .auth import CredentialsError, TokenCache, credentials_info, project_id

__all__ = ["ANTHROPIC_VERSION", "DEFAULT_REGION", "WIRE", "VertexAdaptor", "host", "is_claude"]

WIRE = "vertex"
DEFAULT_REGION = "us-central1"
ANTHROPIC_VERSION = "vertex-2023-10-16"  # the only value Vertex accepts for Claude
_REGION = re.compile(r"^[a-z0-9-]+$")  # goes into a host name: nothing else allowed
_VERSIONED = re.compile(r"/v1(beta1)?$")
_GOOGLE_HOST = re.compile(r"^https://([a-z0-9-]+-)?aiplatform\.googleapis\.com$")
_SNIFF_LIMIT = 64 * 1024  # bytes read before deciding a stream's protocol without a clear sign

TOKENS = TokenCache()


def is_claude(model: str) -> bool:
    return model.lower().startswith("claude")


def region(channel: ChannelEntry) -> str:
    value = channel.config.get("region")
    value = value.strip().lower() if isinstance(value, str) and value.strip() else DEFAULT_REGION
    if not _REGION.match(value):
        raise ValueError(f"invalid Vertex AI region {value!r}")
    return value


def host(channel: ChannelEntry) -> str:
    """`{host}/v1`: the channel's base URL (a proxy, or the fake provider in tests) or Google's
    endpoint for the channel's region; the "global" location has a host without region prefix
    (https://cloud.google.com/vertex-ai/generative-ai/docs/learn/locations#global-endpoint).
    A base URL that is one of Google's own hosts (the type's default) follows `region`."""
    base = channel.base_url.rstrip("/")
    if not base or _GOOGLE_HOST.match(base):
        where = region(channel)
        base = "https://aiplatform.googleapis.com" if where == "global" else f"https://{where}-aiplatform.googleapis.com"
    return base if _VERSIONED.search(base) else base + "/v1"


def _json(payload: Any) -> Any:
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ir.ConversionError("the Vertex AI answer is not JSON") from exc
    return payload


class VertexAdaptor(Adaptor):
    default_format = WIRE
    # Neither Gemini nor Claude on Vertex fetches an arbitrary http(s) URL: both get it inline.
    needs_inline_media = True

    def native_formats(self, channel: ChannelEntry, **_: Any) -> frozenset[str]:
        return frozenset()

    def upstream_format(self, channel: ChannelEntry, caller_format: str, **_: Any) -> str:
        return WIRE

    # -- URL and headers --------------------------------------------------------------------

    def build_url(self, channel: ChannelEntry, endpoint: str, *, model: str, stream: bool, wire: str = WIRE) -> str:
        if endpoint != "chat":
            raise ValueError(f"Vertex AI channels serve no {endpoint} endpoint here")
        try:
            project = project_id(credentials_info(channel.key, channel.config), channel.config)
        except CredentialsError as exc:
            raise UpstreamError(str(exc), retryable=True) from None
        prefix = f"{host(channel)}/projects/{quote(project, safe='')}/locations/{region(channel)}"
        name = quote(model, safe="@-._~")
        if is_claude(model):
            return f"{prefix}/publishers/anthropic/models/{name}:" + ("streamRawPredict" if stream else "rawPredict")
        return f"{prefix}/publishers/google/models/{name}:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")

    def build_headers(self, channel: ChannelEntry, *, wire: str = WIRE) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    async def authorize(self, channel: ChannelEntry, *, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        from ...http import proxy  # Django settings: imported when a request is on its way

        try:
            token = await TOKENS.token(channel.id, credentials_info(channel.key, channel.config), proxy=proxy())
        except CredentialsError as exc:
            # The channel's fault, not the caller's: another channel may serve the request.
            raise UpstreamError(f"Vertex AI channel {channel.id}: {exc}", retryable=True) from None
        return {**headers, "Authorization": f"Bearer {token}"}

    # -- bodies -----------------------------------------------------------------------------

    def encode_request(
        self, request: ir.Request, *, model: str, wire: str = WIRE, channel: ChannelEntry | None = None
    ) -> dict[str, Any]:
        request.model = model
        config = channel.config if channel is not None else {}
        if not is_claude(model):
            return gemini_request(request, safety=config.get("safety_settings") or config.get("safety_setting"))
        body = converter("messages").request_from_ir(request)
        body.pop("model", None)
        body["anthropic_version"] = ANTHROPIC_VERSION
        beta = config.get("anthropic_beta")
        if isinstance(beta, str) and beta.strip():
            body["anthropic_beta"] = [b.strip() for b in beta.split(",") if b.strip()]
        return body

    def decode_response(self, payload: Any, *, wire: str = WIRE, model: str = "") -> ir.Response:
        data = _json(payload)
        claude = is_claude(model) if model else isinstance(data, dict) and "candidates" not in data and (
            data.get("type") == "message" or "content" in data)
        if claude:
            return converter("messages").response_to_ir(data)
        return gemini_response(data, model=model)

    def stream_decoder(self, *, wire: str = WIRE, model: str = "") -> StreamDecoder:
        if model:
            return converter("messages").StreamDecoder() if is_claude(model) else GeminiStreamDecoder(model)
        return SniffingStreamDecoder()


def _sniff(buffer: bytes) -> str | None:
    """"messages" or "gemini" from the first SSE field line, None while none is complete."""
    for line in buffer.replace(b"\r\n", b"\n").split(b"\n")[:-1]:  # complete lines only
        line = line.strip()
        if not line or line.startswith(b":"):
            continue  # blank lines and comments (keep-alives)
        if line.startswith(b"event:"):
            return "messages"  # Anthropic names every event; Gemini's alt=sse sends data only
        if line.startswith(b"data:") and b'"type"' in line and b'"message_start"' in line:
            return "messages"
        return "gemini"
    return None


class SniffingStreamDecoder:
    """Decodes a Vertex stream of either protocol, picked from its first line. Until then the
    bytes are held (a few hundred at most in practice, bounded by _SNIFF_LIMIT)."""

    def __init__(self) -> None:
        self._inner: StreamDecoder | None = None
        self._held = b""

    def _choose(self, kind: str) -> StreamDecoder:
        self._inner = converter("messages").StreamDecoder() if kind == "messages" else GeminiStreamDecoder()
        return self._inner

    def feed(self, data: bytes) -> list[ir.StreamEvent]:
        if self._inner is not None:
            return self._inner.feed(data)
        self._held += data
        kind = _sniff(self._held)
        if kind is None and len(self._held) < _SNIFF_LIMIT:
            return []
        held, self._held = self._held, b""
        return self._choose(kind or "gemini").feed(held)

    def close(self) -> list[ir.StreamEvent]:
        if self._inner is not None:
            return self._inner.close()
        held, self._held = self._held, b""
        inner = self._choose(_sniff(held + b"\n") or "gemini")
        return inner.feed(held) + inner.close()
