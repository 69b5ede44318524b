from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.dispatch import receiver


@receiver(post_migrate)
def bootstrap_after_migrate(sender: AppConfig, **kwargs: Any) -> None:
    # Run once, after the last of our apps migrated, so every table exists.
    if sender.name != "relay":
        return
    from .services import bootstrap_first_start

    bootstrap_first_start()
