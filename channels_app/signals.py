from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Channel
from .services import abilities_rebuild


@receiver(post_save, sender=Channel, dispatch_uid="channel-abilities")
def rebuild_abilities(sender: type[Channel], instance: Channel, **kwargs: Any) -> None:
    abilities_rebuild(channel=instance)
