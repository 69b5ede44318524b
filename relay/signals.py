"""Bump cache generations when a cached table changes, so every worker reloads it.

"keys" covers what key authentication caches (keys, users, groups); "config" covers routing
and pricing (channels, abilities, prices, options, groups). Quota counters are written by the
relay with raw SQL and deliberately do not go through here.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.signals import post_delete, post_save

from accounts.models import ApiKey, Group, User
from billing.models import ChannelModelPrice, ModelPrice
from channels_app.models import Ability, Channel

from .models import CacheGeneration, Option

GENERATIONS: dict[type, tuple[str, ...]] = {
    ApiKey: ("keys",),
    User: ("keys",),
    Group: ("keys", "config"),
    Channel: ("config",),
    Ability: ("config",),
    ModelPrice: ("config",),
    ChannelModelPrice: ("config",),
    Option: ("config",),
}


def bump_generation(*names: str) -> None:
    for name in names:
        updated = CacheGeneration.objects.filter(name=name).update(version=F("version") + 1)
        if not updated:
            # A recreated row (e.g. after a flush) starts from the clock, never from a value
            # a worker may still remember.
            CacheGeneration.objects.get_or_create(name=name, defaults={"version": time.time_ns()})


def _on_change(sender: type, **kwargs: Any) -> None:
    names = GENERATIONS[sender]
    transaction.on_commit(lambda: bump_generation(*names))


for _model in GENERATIONS:
    post_save.connect(_on_change, sender=_model, dispatch_uid=f"cache-gen-save-{_model.__name__}")
    post_delete.connect(_on_change, sender=_model, dispatch_uid=f"cache-gen-delete-{_model.__name__}")
