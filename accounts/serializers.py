"""Shapes of the management API for users and relay keys ("tokens"), with the original's field names.

Times are Unix seconds; `expired_time` is -1 for a key that never expires. The key's digest never
leaves the server: a listed key shows only `key_prefix`, and the raw key is returned once, at creation.
"""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers

from oneapi_site.api_envelope import unix

from .models import ApiKey, KeyStatus, User

NEVER = -1
MAX_QUOTA = 10**18


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "status": user.status,
        "email": user.email,
        "group": user.group.name,
        "quota": user.quota,
        "used_quota": user.used_quota,
        "request_count": user.request_count,
        "aff_code": user.aff_code or "",
        "inviter_id": user.inviter_id or 0,
        "github_id": user.github_id,
        "oidc_id": user.oidc_id,
    }


def token_json(api_key: ApiKey) -> dict[str, Any]:
    created = unix(api_key.created_at)
    return {
        "id": api_key.pk,
        "user_id": api_key.user_id,
        "name": api_key.name,
        "key_prefix": api_key.display_prefix,
        "status": api_key.status,
        "created_time": created,
        # The original starts accessed_time at the creation time.
        "accessed_time": unix(api_key.accessed_at, default=created),
        "expired_time": unix(api_key.expires_at, default=NEVER),
        "remain_quota": api_key.remain_quota,
        "unlimited_quota": api_key.unlimited_quota,
        "used_quota": api_key.used_quota,
        "models": api_key.allowed_models,
        "subnet": api_key.subnet,
    }


def normalise_list(value: str) -> str:
    return ",".join(part.strip() for part in value.replace("\n", ",").split(",") if part.strip())


def expiry_from_unix(value: int) -> datetime | None:
    return None if value == NEVER else datetime.fromtimestamp(value, tz=UTC)


class TokenFieldsSerializer(serializers.Serializer):
    """The editable fields of a relay key, as the original's web page and scripts send them."""

    name = serializers.CharField(max_length=ApiKey._meta.get_field("name").max_length, trim_whitespace=True)
    # -1 is what the original's unlimited keys carry; it is stored as 0.
    remain_quota = serializers.IntegerField(min_value=-1, max_value=MAX_QUOTA, default=0)
    unlimited_quota = serializers.BooleanField(default=False)
    expired_time = serializers.IntegerField(min_value=NEVER, default=NEVER)
    models = serializers.CharField(allow_blank=True, max_length=10000, default="", trim_whitespace=True)
    subnet = serializers.CharField(allow_blank=True, max_length=1024, default="", trim_whitespace=True)

    def validate_expired_time(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("use -1 for a key that never expires, or a Unix time in seconds")
        return value

    def validate_models(self, value: str) -> str:
        return normalise_list(value)

    def validate_subnet(self, value: str) -> str:
        value = normalise_list(value)
        for part in value.split(","):
            if not part:
                continue
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise serializers.ValidationError(f"{part!r} is not an IP address or CIDR range") from None
        return value

    def key_fields(self) -> dict[str, Any]:
        """The validated data as ApiKey field values (only the fields sent, on a partial update)."""
        data = self.validated_data
        converters: dict[str, tuple[str, Any]] = {
            "name": ("name", lambda v: v),
            "remain_quota": ("remain_quota", lambda v: max(v, 0)),
            "unlimited_quota": ("unlimited_quota", lambda v: v),
            "expired_time": ("expires_at", expiry_from_unix),
            "models": ("allowed_models", lambda v: v),
            "subnet": ("subnet", lambda v: v),
            "status": ("status", int),
        }
        return {field: convert(data[name]) for name, (field, convert) in converters.items() if name in data}


class TokenCreateSerializer(TokenFieldsSerializer):
    def validate_expired_time(self, value: int) -> int:
        value = super().validate_expired_time(value)
        if value != NEVER and value <= time.time():
            raise serializers.ValidationError("is in the past; use -1 for a key that never expires")
        return value


class TokenUpdateSerializer(TokenFieldsSerializer):
    """`PUT /api/token/` (used with partial=True): fields left out keep their values.

    The original overwrote every field, so a script sending only a name reset the quota to 0.
    """

    status = serializers.ChoiceField(choices=KeyStatus.choices, required=False)


class TokenStatusSerializer(serializers.Serializer):
    """`PUT /api/token/?status_only=true`: only the status changes."""

    status = serializers.ChoiceField(choices=KeyStatus.choices)


def refuse_unusable_enable(*, api_key: ApiKey, new_status: int) -> None:
    """Turning a key back on must not leave it expired or exhausted (the original's two checks)."""
    if new_status != KeyStatus.ENABLED:
        return
    if api_key.expires_at is not None and api_key.expires_at.timestamp() <= time.time():
        raise serializers.ValidationError(
            {"status": "the key has expired; change expired_time (or set it to -1, never) before enabling it"}
        )
    if not api_key.unlimited_quota and api_key.remain_quota <= 0:
        raise serializers.ValidationError(
            {"status": "the key's quota is used up; raise remain_quota or make it unlimited before enabling it"}
        )
