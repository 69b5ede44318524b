from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from billing.pricing import Price

from . import ir
from .formats import CallerFormat
from .keyauth import KeyEntry, PresentedKey
from .snapshot import ChannelEntry


@dataclass(slots=True)
class RelayContext:
    """Everything one relay request carries from authentication to settlement."""

    request_id: str
    format: CallerFormat
    key: KeyEntry
    presented: PresentedKey
    payload: dict[str, Any]
    body: bytes
    model: str
    is_stream: bool
    client_ip: str | None
    started: float = field(default_factory=time.monotonic)
    held_quota: int = 0
    output_budget: int = 0  # output tokens the hold covers
    pending_hold: asyncio.Task[None] | None = None  # a hold placed alongside the upstream call (relay.billing_flow)
    price: Price | None = None
    channel: ChannelEntry | None = None
    upstream_model: str = ""
    tried: set[int] = field(default_factory=set)
    reasoning_format: str | None = None  # Chat callers' ?reasoning_format= (forces conversion)
    ir_request: ir.Request | None = None  # parsed only when a conversion needs it
    input_items: list[Any] = field(default_factory=list)  # Responses: the whole input, expanded
    # time.monotonic() marks of the attempt that answered, for the request's trace (relay.tracing)
    forwarded_at: float = 0.0
    upstream_first_byte_at: float = 0.0
    upstream_done_at: float = 0.0

    @property
    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)
