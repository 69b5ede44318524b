"""Channel selection: group x model -> enabled abilities -> highest priority tier -> weighted random.

Channels already tried in this request, and abilities suspended after a 429, are skipped; when
a whole tier is exhausted the next lower tier is used.
"""

from __future__ import annotations

import random
import time

from .errors import NoChannel, NotFound
from .snapshot import ChannelEntry, Snapshot


def model_known(snapshot: Snapshot, group: str, model: str) -> bool:
    return (group, model) in snapshot.known


def select_channel(snapshot: Snapshot, *, group: str, model: str, exclude: set[int], now: float | None = None) -> ChannelEntry:
    route = snapshot.routes.get((group, model))
    if route is None:
        if not model_known(snapshot, group, model):
            raise NotFound(
                f"model {model} is not available to group {group}", code="model_not_found", param="model"
            )
        raise NoChannel(f"no enabled channel serves model {model} for group {group} right now")
    now = time.time() if now is None else now
    suspended = snapshot.suspended_until
    for _priority, candidates in route.tiers:
        usable = [
            (entry, weight)
            for entry, weight in candidates
            if entry.id not in exclude and suspended.get((entry.id, model), 0.0) <= now
        ]
        if not usable:
            continue
        if len(usable) == 1:
            return usable[0][0]
        weights = [weight for _, weight in usable]
        if not any(weights):
            return random.choice(usable)[0]
        return random.choices(usable, weights=weights)[0][0]
    raise NoChannel(f"all channels for model {model} are unavailable right now (rate limited or failing)")
