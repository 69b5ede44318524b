"""Which price applies: the channel's own, else the global one, else the default option."""

from __future__ import annotations

from billing.pricing import Price

from .snapshot import ChannelEntry, Snapshot


def price_for(snapshot: Snapshot, channel: ChannelEntry | None, model: str) -> Price:
    if channel is not None:
        own = snapshot.channel_prices.get((channel.id, model))
        if own is not None:
            return own
    return snapshot.prices.get(model) or snapshot.default_price
