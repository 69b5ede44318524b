from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.dispatch import receiver


@receiver(post_migrate)
def bootstrap_after_migrate(sender: AppConfig, **kwargs: Any) -> None:
    # Run once, after the last of our apps migrated, so every table exists; not after a partial
    # `migrate app 000N`, which leaves some of them out.
    if sender.name != "relay" or not _all_tables_exist(kwargs.get("using", "default")):
        return
    from .services import bootstrap_first_start

    bootstrap_first_start()


def _all_tables_exist(using: str) -> bool:
    from django.db import connections

    introspection = connections[using].introspection
    return set(introspection.django_table_names(only_existing=False)) <= set(introspection.table_names())
