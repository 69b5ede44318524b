"""A consistent in-memory copy of routing and pricing tables, loaded through the ORM.

Loading happens when the tables change or every SYNC_FREQUENCY seconds, never per request,
so the ORM's cost is irrelevant here and the encrypted channel keys are decrypted once.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from billing.models import ChannelModelPrice, ModelPrice
from billing.pricing import Price
from channels_app.models import Ability, Channel, ChannelStatus
from channels_app.types import type_info

from .options import defaults, parse_option


@dataclass(frozen=True, slots=True)
class ChannelEntry:
    id: int
    name: str
    type: int
    protocol: str
    base_url: str
    key: str
    model_mapping: dict[str, str]
    config: dict[str, object]
    priority: int
    weight: int
    enabled: bool


@dataclass(slots=True)
class Route:
    """Candidates for one (group, model): abilities sorted by priority, highest first."""

    tiers: list[tuple[int, list[tuple[ChannelEntry, int]]]] = field(default_factory=list)


@dataclass(slots=True)
class Snapshot:
    channels: dict[int, ChannelEntry] = field(default_factory=dict)
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    # Abilities that exist for a (group, model), enabled or not: tells "unknown model" apart
    # from "no channel available right now".
    known: set[tuple[str, str]] = field(default_factory=set)
    suspended_until: dict[tuple[int, str], float] = field(default_factory=dict)  # wall-clock seconds
    prices: dict[str, Price] = field(default_factory=dict)
    channel_prices: dict[tuple[int, str], Price] = field(default_factory=dict)
    options: dict[str, object] = field(default_factory=defaults)
    loaded_at: float = 0.0

    @property
    def default_price(self) -> Price:
        """The price of models with none set (options DefaultInputPrice / DefaultOutputPrice)."""
        price = self._default_price
        if price is None:
            price = self._default_price = Price.from_usd(
                str(self.options["DefaultInputPrice"]), str(self.options["DefaultOutputPrice"])
            )
        return price

    _default_price: Price | None = None


def _price(row: ModelPrice | ChannelModelPrice) -> Price:
    return Price.from_usd(
        row.input_price, row.output_price, row.cached_input_price, row.cache_write_price, row.cache_write_1h_price
    )


def channel_entry(ch: Channel) -> ChannelEntry:
    info = type_info(ch.type)
    return ChannelEntry(
        id=ch.pk,
        name=ch.name,
        type=ch.type,
        protocol=info.protocol,
        base_url=(ch.base_url or info.default_base_url).rstrip("/"),
        key=ch.key,
        model_mapping={str(k): str(v) for k, v in (ch.model_mapping or {}).items()},
        config=dict(ch.config or {}),
        priority=ch.priority,
        weight=ch.weight,
        enabled=ch.status == ChannelStatus.ENABLED,
    )


def load_snapshot() -> Snapshot:
    from django.db import close_old_connections, connection

    from .models import Option

    close_old_connections()
    try:
        snap = Snapshot(loaded_at=time.time())
        # Abilities before channels: the two reads are separate snapshots, and a channel commits
        # before its abilities are written, so every ability read here finds its channel below.
        # (Channels first could see a new channel's abilities without the channel: a "known"
        # model with no route, answered 503 until the next poll; CI hit it.)
        abilities = list(
            Ability.objects.all().only("group", "model", "channel_id", "enabled", "priority", "weight", "suspend_until")
        )
        for ch in Channel.objects.all():
            snap.channels[ch.pk] = channel_entry(ch)
        tiers: dict[tuple[str, str], dict[int, list[tuple[ChannelEntry, int]]]] = defaultdict(lambda: defaultdict(list))
        for ab in abilities:
            key = (ab.group, ab.model)
            snap.known.add(key)
            entry = snap.channels.get(ab.channel_id)
            if entry is None or not ab.enabled or not entry.enabled:
                continue
            tiers[key][ab.priority].append((entry, ab.weight))
            if isinstance(ab.suspend_until, datetime):
                snap.suspended_until[(ab.channel_id, ab.model)] = ab.suspend_until.timestamp()
        for key, by_priority in tiers.items():
            snap.routes[key] = Route(tiers=sorted(by_priority.items(), key=lambda item: -item[0]))
        snap.prices = {row.model: _price(row) for row in ModelPrice.objects.all()}
        snap.channel_prices = {(row.channel_id, row.model): _price(row) for row in ChannelModelPrice.objects.all()}
        for opt in Option.objects.all():
            try:
                snap.options[opt.key] = parse_option(opt.key, opt.value)
            except ValueError:
                pass  # the admin validates options; a bad legacy value keeps the default
        return snap
    finally:
        connection.close()
