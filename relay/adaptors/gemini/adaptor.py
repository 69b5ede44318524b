"""Google Gemini API (channel type 24): generativelanguage.googleapis.com.

https://ai.google.dev/api/generate-content and https://ai.google.dev/api/embeddings
Gemini is no caller format, so every request goes through the IR: `wire` is always "gemini".
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import orjson

from ... import ir
from ...snapshot import ChannelEntry
from ..base import Adaptor
from .embeddings import embeddings_from_gemini, embeddings_to_gemini, model_path
from .stream import GeminiStreamDecoder
from .wire import request_from_ir, response_to_ir

__all__ = ["DEFAULT_BASE_URL", "GeminiAdaptor", "api_base"]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"  # tools, thinking and responseSchema are all in v1beta
_VERSIONED = re.compile(r"/v\d+(alpha|beta)?\d*$")
_API_VERSIONS = frozenset({"v1", "v1beta", "v1alpha"})
_GEMINI_READS = re.compile(
    r"^https://(generativelanguage\.googleapis\.com/[^?#]*files/|(www\.|m\.)?youtube\.com/|youtu\.be/)", re.I
)


def api_base(channel: ChannelEntry) -> str:
    """`{base}/v1beta` (or the channel's `api_version`); a base that already ends in a version
    (a proxy at ".../v1beta") is used as it is."""
    base = (channel.base_url or DEFAULT_BASE_URL).rstrip("/")
    if _VERSIONED.search(base):
        return base
    version = channel.config.get("api_version")
    return f"{base}/{version if version in _API_VERSIONS else DEFAULT_API_VERSION}"


def _json(body: Any) -> Any:
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ir.ConversionError("the Gemini answer is not JSON") from exc
    return body


class GeminiAdaptor(Adaptor):
    default_format = "gemini"
    native_format = None  # no caller speaks Gemini's format to the gateway
    supports_embeddings = True
    # Gemini reads fileData URIs of its own Files API and YouTube; other URLs go inline.
    needs_inline_media = True

    def reads_media_url(self, url: str) -> bool:
        return _GEMINI_READS.match(url) is not None

    def native_formats(self, channel: ChannelEntry, *, model: str | None = None) -> frozenset[str]:
        return frozenset()

    def build_url(self, channel: ChannelEntry, endpoint: str, *, model: str, stream: bool, wire: str = "gemini") -> str:
        """`endpoint` "embeddings" -> batchEmbedContents; any chat-like endpoint -> generateContent
        (streamGenerateContent with alt=sse: without it Google streams one JSON array)."""
        target = f"{api_base(channel)}/{quote(model_path(model), safe='/-._~')}"
        if endpoint == "embeddings":
            return target + ":batchEmbedContents"
        return target + (":streamGenerateContent?alt=sse" if stream else ":generateContent")

    def build_headers(self, channel: ChannelEntry, *, wire: str = "gemini") -> dict[str, str]:
        # The header keeps the key out of URLs (and so out of proxy and access logs);
        # https://ai.google.dev/gemini-api/docs/api-key#provide-api-key-explicitly
        return {"x-goog-api-key": channel.key, "Content-Type": "application/json"}

    # -- chat-like requests -----------------------------------------------------------------

    def encode_request(
        self, request: ir.Request, *, model: str, wire: str = "gemini", channel: ChannelEntry | None = None
    ) -> dict[str, Any]:
        """The GenerateContentRequest (the model is in the URL, not the body). With `channel`,
        its config `safety_settings` (a full list) or `safety_setting` (a threshold) apply."""
        request.model = model
        safety = None
        if channel is not None:
            safety = channel.config.get("safety_settings") or channel.config.get("safety_setting")
        return request_from_ir(request, safety=safety)

    def decode_response(self, payload: Any, *, wire: str = "gemini", model: str = "") -> ir.Response:
        return response_to_ir(_json(payload), model=model)

    def stream_decoder(self, *, wire: str = "gemini", model: str = "") -> GeminiStreamDecoder:
        return GeminiStreamDecoder(model)

    # -- embeddings -------------------------------------------------------------------------

    def encode_embeddings(self, payload: dict[str, Any], *, model: str) -> dict[str, Any]:
        """OpenAI embeddings body -> BatchEmbedContentsRequest (raises ir.ConversionError)."""
        return embeddings_to_gemini(payload, model=model)

    def decode_embeddings(self, body: Any, *, model: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """-> OpenAI's embeddings list; `payload` (the caller's body) gives the encoding_format
        and the inputs to estimate usage from, since batchEmbedContents reports none."""
        return embeddings_from_gemini(_json(body), model=model, payload=payload)
