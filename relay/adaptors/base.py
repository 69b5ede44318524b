"""The adaptor contract: one upstream protocol, spoken from and to the internal representation.

Wire formats that are also caller formats ("chat", "responses", "messages") reuse the pure
converters in relay.converters; upstream-only protocols (Gemini, Bedrock) bring their own
mapping. `native_formats` lists the caller formats a channel can take unconverted: then the
relay passes the caller's bytes through (only the model name mapped) and reads usage as it
goes, so nothing is lost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

from .. import ir
from ..converters import converter
from ..snapshot import ChannelEntry


class StreamDecoder(Protocol):
    def feed(self, data: bytes) -> list[ir.StreamEvent]: ...

    def close(self) -> list[ir.StreamEvent]: ...


class Adaptor(ABC):
    #: the wire format used upstream when the caller's format is not native
    default_format: str = "chat"

    def native_formats(self, channel: ChannelEntry) -> frozenset[str]:
        """Caller formats this channel accepts as they are (pass-through)."""
        return frozenset({self.default_format})

    def upstream_format(self, channel: ChannelEntry, caller_format: str) -> str:
        return caller_format if caller_format in self.native_formats(channel) else self.default_format

    @abstractmethod
    def build_url(self, channel: ChannelEntry, endpoint: str, *, model: str, stream: bool, wire: str) -> str:
        """`endpoint`: "chat" (any chat-like format), "embeddings"; `wire`: the upstream format."""

    @abstractmethod
    def build_headers(self, channel: ChannelEntry, *, wire: str) -> dict[str, str]: ...

    async def authorize(self, channel: ChannelEntry, *, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        """Last step before sending: auth that depends on the body (AWS SigV4) or on a token
        that must be fetched and cached (Vertex service accounts). Default: headers as built."""
        return headers

    # --- conversion path (caller format differs from the upstream's) ------------------------

    def encode_request(self, request: ir.Request, *, model: str, wire: str) -> dict[str, Any]:
        request.model = model
        return converter(wire).request_from_ir(request)

    def decode_response(self, payload: Any, *, wire: str) -> ir.Response:
        return converter(wire).response_to_ir(payload)

    def stream_decoder(self, *, wire: str) -> StreamDecoder:
        return converter(wire).StreamDecoder()
