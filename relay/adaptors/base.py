from __future__ import annotations

from abc import ABC, abstractmethod

from ..snapshot import ChannelEntry


class Adaptor(ABC):
    """Speaks one upstream protocol: where to send a request and how to authenticate it."""

    native_protocol: str = ""

    @abstractmethod
    def build_url(self, channel: ChannelEntry, endpoint: str) -> str:
        """`endpoint` is the relay route name: "chat", "embeddings"."""

    @abstractmethod
    def build_headers(self, channel: ChannelEntry) -> dict[str, str]: ...
