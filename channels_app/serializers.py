"""Shapes of the management API for channels, with the original's field names.

`key` is write-only: it is stored encrypted and never returned (empty on update = keep it).
`model_mapping` and `config` are accepted as JSON objects or JSON strings (the original's web
page sends strings) and returned as JSON strings, as the original returns them.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from oneapi_site.api_envelope import unix

from .models import Channel, ChannelStatus, split_list
from .types import CHANNEL_TYPES, type_info

# API field -> model attribute, where they differ.
MODEL_FIELDS = {"models": "model_names", "group": "groups"}
API_FIELDS = {model_field: api_field for api_field, model_field in MODEL_FIELDS.items()}


def json_text(value: dict[str, Any] | None) -> str:
    return json.dumps(value, ensure_ascii=False) if value else ""


def channel_json(channel: Channel) -> dict[str, Any]:
    return {
        "id": channel.pk,
        "type": channel.type,
        "type_name": type_info(channel.type).name,
        "name": channel.name,
        "status": channel.status,
        "base_url": channel.base_url,
        "models": channel.model_names,
        "group": channel.groups,
        "model_mapping": json_text(channel.model_mapping),
        "priority": channel.priority,
        "weight": channel.weight,
        "config": json_text(channel.config),
        "testing_model": channel.testing_model,
        "created_time": unix(channel.created_at),
        "test_time": unix(channel.test_time),
        "response_time": channel.response_time,
        "test_message": channel.last_test_error,
        "used_quota": channel.used_quota,
        "balance": channel.balance,
        "balance_updated_time": unix(channel.balance_updated_at),
    }


class JSONObjectField(serializers.Field):
    """A JSON object, sent as an object or as its JSON text; empty or null means {}."""

    default_error_messages = {
        "invalid_json": "is not valid JSON: {error}",
        "not_object": 'must be a JSON object, e.g. {{"name": "value"}}',
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if data is None or (isinstance(data, str) and not data.strip()):
            return {}
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as exc:
                self.fail("invalid_json", error=str(exc))
        if not isinstance(data, dict):
            self.fail("not_object")
        return data

    def to_representation(self, value: Any) -> str:
        return json_text(value)


class ListTextField(serializers.CharField):
    """A comma (or newline) separated list, stored normalised as `a,b,c`."""

    def to_internal_value(self, data: Any) -> str:
        return ",".join(split_list(super().to_internal_value(data)))


class ChannelSerializer(serializers.Serializer):
    """Input of `POST /api/channel/` and (partial) `PUT /api/channel/`; `Channel.clean()` has the last word."""

    type = serializers.ChoiceField(choices=sorted(CHANNEL_TYPES), default=1)
    name = serializers.CharField(max_length=Channel._meta.get_field("name").max_length)
    key = serializers.CharField(allow_blank=True, trim_whitespace=True, write_only=True, default="")
    base_url = serializers.CharField(allow_blank=True, max_length=512, default="", trim_whitespace=True)
    models = ListTextField(allow_blank=True, default="")
    group = ListTextField(allow_blank=True, max_length=512, default="default")
    model_mapping = JSONObjectField(default=dict)
    priority = serializers.IntegerField(default=0, min_value=-(2**62), max_value=2**62)
    weight = serializers.IntegerField(default=1, min_value=0, max_value=2**31 - 1)
    status = serializers.ChoiceField(
        choices=[int(ChannelStatus.ENABLED), int(ChannelStatus.MANUALLY_DISABLED), int(ChannelStatus.AUTO_DISABLED)],
        default=int(ChannelStatus.ENABLED),
    )
    config = JSONObjectField(default=dict)
    testing_model = serializers.CharField(allow_blank=True, max_length=128, default="", trim_whitespace=True)

    def validate_base_url(self, value: str) -> str:
        return value.rstrip("/")

    def channel_fields(self) -> dict[str, Any]:
        """The validated data as Channel attributes (only the fields sent, on a partial update)."""
        fields = {MODEL_FIELDS.get(name, name): value for name, value in self.validated_data.items()}
        if self.partial and not fields.get("key"):
            fields.pop("key", None)  # an empty key on update keeps the stored one
        return fields


def api_errors(exc: DjangoValidationError) -> dict[str, Any] | list[str]:
    """Model validation errors keyed by the API's field names (models, group, ...)."""
    if not hasattr(exc, "error_dict"):
        return exc.messages
    return {API_FIELDS.get(field, field): messages for field, messages in exc.message_dict.items()}
