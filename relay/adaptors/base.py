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
    #: the upstream cannot fetch http(s) image or file URLs itself: the relay inlines them
    #: (through its SSRF guard, relay.media) before `encode_request`
    needs_inline_media: bool = False

    def reads_media_url(self, url: str) -> bool:
        """With `needs_inline_media`: an http(s) URL this upstream does read itself (its own
        file store), left as it is."""
        return False

    def native_formats(self, channel: ChannelEntry, *, model: str | None = None) -> frozenset[str]:
        """Caller formats this channel accepts as they are (pass-through), for `model` (the
        upstream's name for it: an Azure resource speaks Messages for its Claude deployments)."""
        return frozenset({self.default_format})

    def upstream_format(self, channel: ChannelEntry, caller_format: str, *, model: str | None = None) -> str:
        return caller_format if caller_format in self.native_formats(channel, model=model) else self.default_format

    def adapt_passthrough(self, payload: dict[str, Any], *, wire: str, channel: ChannelEntry) -> dict[str, Any] | None:
        """A caller's body in the upstream's own format may still need mending (a quirk the
        upstream refuses); return the mended body, or None to send the caller's bytes as they are."""
        return None

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

    def encode_request(
        self, request: ir.Request, *, model: str, wire: str, channel: ChannelEntry | None = None
    ) -> dict[str, Any]:
        request.model = model
        return converter(wire).request_from_ir(request)

    def decode_response(self, payload: Any, *, wire: str, model: str = "") -> ir.Response:
        """`model`: the upstream model asked for (some answers, e.g. Converse's, do not name it)."""
        return converter(wire).response_to_ir(payload)

    def stream_decoder(self, *, wire: str, model: str = "") -> StreamDecoder:
        return converter(wire).StreamDecoder()
