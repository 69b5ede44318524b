"""Upstream channels and the abilities (group x model -> channel) projection used for routing."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from .fields import EncryptedTextField
from .types import CHANNEL_TYPES, UNSUPPORTED, ChannelType, type_info


class ChannelStatus(models.IntegerChoices):
    UNKNOWN = 0, "unknown"
    ENABLED = 1, "enabled"
    MANUALLY_DISABLED = 2, "disabled"
    AUTO_DISABLED = 3, "auto-disabled"


def split_list(value: str) -> list[str]:
    """Comma- or newline-separated list, as the original stores models and groups."""
    return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]


class Channel(models.Model):
    type = models.IntegerField(choices=ChannelType.choices, default=1)
    name = models.CharField(max_length=64, db_index=True)
    key = EncryptedTextField(help_text="Upstream API key; stored encrypted.")
    base_url = models.CharField(max_length=512, blank=True, default="", help_text="Empty = the type's default.")
    model_names = models.TextField(
        db_column="models", help_text="Comma-separated model names this channel serves (as clients ask for them)."
    )
    groups = models.CharField(max_length=512, default="default", help_text="Comma-separated groups allowed to use it.")
    model_mapping = models.JSONField(
        default=dict, blank=True, help_text='{"asked-model": "upstream-model"}; asked names need not be listed twice.'
    )
    priority = models.BigIntegerField(default=0, help_text="Higher tiers are tried first.")
    weight = models.PositiveIntegerField(default=1, help_text="Share of traffic within a priority tier.")
    status = models.IntegerField(choices=ChannelStatus.choices, default=ChannelStatus.ENABLED)
    config = models.JSONField(default=dict, blank=True)
    testing_model = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    test_time = models.DateTimeField(null=True, blank=True)
    response_time = models.IntegerField(default=0, help_text="Milliseconds, from the last test.")
    last_test_error = models.TextField(blank=True, default="")
    used_quota = models.BigIntegerField(default=0)
    balance = models.FloatField(default=0)
    balance_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "channels"
        ordering = ["-priority", "id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    @property
    def model_list(self) -> list[str]:
        return split_list(self.model_names)

    @property
    def group_list(self) -> list[str]:
        return split_list(self.groups)

    @property
    def type_name(self) -> str:
        return type_info(self.type).name

    def served_models(self) -> list[str]:
        """Models clients may ask this channel for: its list plus the mapping's asked names."""
        names = dict.fromkeys(self.model_list)
        for asked in (self.model_mapping or {}).keys():
            names.setdefault(str(asked))
        return list(names)

    def clean(self) -> None:
        from accounts.models import Group

        errors: dict[str, Any] = {}
        if self.type not in CHANNEL_TYPES:
            errors["type"] = f"unknown channel type {self.type}"
        elif type_info(self.type).protocol == UNSUPPORTED:
            errors["type"] = f"{type_info(self.type).name} channels are not supported yet"
        if not self.base_url and not type_info(self.type).default_base_url:
            errors["base_url"] = "this channel type needs a base URL"
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            errors["base_url"] = "must start with http:// or https://"
        if not isinstance(self.model_mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in self.model_mapping.items()
        ):
            errors["model_mapping"] = 'must be a JSON object of model names, e.g. {"gpt-4o": "gpt-4o-2024-08-06"}'
        elif not self.served_models():
            errors["model_names"] = "list at least one model"
        if not isinstance(self.config, dict):
            errors["config"] = "must be a JSON object"
        groups = self.group_list
        if not groups:
            errors["groups"] = "list at least one group"
        else:
            known = set(Group.objects.filter(name__in=groups).values_list("name", flat=True))
            missing = [g for g in groups if g not in known]
            if missing:
                errors["groups"] = f"unknown group(s): {', '.join(missing)}"
        if errors:
            raise ValidationError(errors)


class Ability(models.Model):
    """One row per group x model x channel: the routing table, rebuilt whenever a channel changes."""

    group = models.CharField(max_length=32)
    model = models.CharField(max_length=128)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="abilities")
    enabled = models.BooleanField(default=True)
    priority = models.BigIntegerField(default=0)
    weight = models.PositiveIntegerField(default=1)
    suspend_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "abilities"
        constraints = [models.UniqueConstraint(fields=["group", "model", "channel"], name="ability_unique")]
        indexes = [models.Index(fields=["group", "model", "enabled"])]
        verbose_name_plural = "abilities"

    def __str__(self) -> str:
        return f"{self.group} / {self.model} -> channel {self.channel_id}"
