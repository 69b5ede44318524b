"""Input shapes of the management API's account, user, redemption and option routes.

Field names are the original's (`aff_code`, `verification_code`, `original_password`, ...). Each
serializer validates everything before anything is written, so a refused request changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from relay.options import OPTION_SPECS

from .models import Group, Redemption, RedemptionStatus, Role, User
from .redemptions import MAX_BATCH, MAX_QUOTA
from .serializers import MAX_QUOTA as MAX_USER_QUOTA
from .signup import username_validators

USERNAME_MAX = User._meta.get_field("username").max_length


def check_password(value: str, user: User | None = None) -> str:
    try:
        password_validation.validate_password(value, user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(list(exc.messages)) from None
    return value


class UsernameField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_length", 3)
        kwargs.setdefault("max_length", USERNAME_MAX)
        super().__init__(validators=username_validators, **kwargs)


def unique_username(value: str, *, exclude: User | None = None) -> str:
    taken = User.objects.filter(username__iexact=value)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise serializers.ValidationError("this username is taken")
    return value


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class RegisterSerializer(serializers.Serializer):
    username = UsernameField()
    password = serializers.CharField(min_length=8, max_length=128, trim_whitespace=False)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    verification_code = serializers.CharField(required=False, allow_blank=True, default="", max_length=16)
    aff_code = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)

    def validate_username(self, value: str) -> str:
        return unique_username(value)

    def validate_password(self, value: str) -> str:
        return check_password(value)


class ResetSerializer(serializers.Serializer):
    email = serializers.EmailField()
    token = serializers.CharField(max_length=256)


class SelfUpdateSerializer(serializers.Serializer):
    username = UsernameField(required=False)
    display_name = serializers.CharField(required=False, allow_blank=True, max_length=30)
    password = serializers.CharField(required=False, allow_blank=True, max_length=128, trim_whitespace=False)
    original_password = serializers.CharField(required=False, allow_blank=True, max_length=128, trim_whitespace=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data:
            raise serializers.ValidationError("nothing to change: send username, display_name or password")
        user: User = self.context["user"]
        if "username" in data:
            unique_username(data["username"], exclude=user)
        if data.get("password"):
            if user.has_usable_password() and not user.check_password(data.get("original_password") or ""):
                raise serializers.ValidationError({"original_password": "is not your current password"})
            check_password(data["password"], user)
        else:
            data.pop("password", None)
        data.pop("original_password", None)
        return data


class UserCreateSerializer(serializers.Serializer):
    username = UsernameField()
    password = serializers.CharField(min_length=8, max_length=128, trim_whitespace=False)
    display_name = serializers.CharField(required=False, allow_blank=True, max_length=30, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=[int(Role.USER), int(Role.ADMIN), int(Role.ROOT)], default=int(Role.USER))
    group = serializers.CharField(required=False, max_length=32, default="")
    quota = serializers.IntegerField(required=False, min_value=0, max_value=MAX_USER_QUOTA, default=0)

    def validate_username(self, value: str) -> str:
        return unique_username(value)

    def validate_password(self, value: str) -> str:
        return check_password(value)

    def validate_group(self, value: str) -> str:
        if value and not Group.objects.filter(name=value).exists():
            raise serializers.ValidationError(f"unknown group {value!r}")
        return value


class UserUpdateSerializer(serializers.Serializer):
    """`PUT /api/user/` (partial): fields left out keep their values; an empty password keeps it."""

    username = UsernameField(required=False)
    display_name = serializers.CharField(required=False, allow_blank=True, max_length=30)
    email = serializers.EmailField(required=False, allow_blank=True)
    password = serializers.CharField(required=False, allow_blank=True, max_length=128, trim_whitespace=False)
    role = serializers.ChoiceField(choices=[int(Role.USER), int(Role.ADMIN), int(Role.ROOT)], required=False)
    group = serializers.CharField(required=False, max_length=32)
    quota = serializers.IntegerField(required=False, min_value=0, max_value=MAX_USER_QUOTA)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        target: User = self.context["target"]
        if "username" in data:
            unique_username(data["username"], exclude=target)
        if data.get("password"):
            check_password(data["password"], target)
        else:
            data.pop("password", None)
        if "group" in data and not Group.objects.filter(name=data["group"]).exists():
            raise serializers.ValidationError({"group": f"unknown group {data['group']!r}"})
        return data


class ManageSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, max_length=254)
    id = serializers.IntegerField(required=False, min_value=1)
    action = serializers.ChoiceField(choices=["disable", "enable", "delete", "promote", "demote"])

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("username") and not data.get("id"):
            raise serializers.ValidationError("name the user by username (or id)")
        return data


class AdminTopUpSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(min_value=1)
    quota = serializers.IntegerField(min_value=-MAX_USER_QUOTA, max_value=MAX_USER_QUOTA)
    remark = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")

    def validate_quota(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("must not be zero")
        return value


class RedeemSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=64)


class RedemptionCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=Redemption._meta.get_field("name").max_length)
    quota = serializers.IntegerField(min_value=1, max_value=MAX_QUOTA)
    count = serializers.IntegerField(min_value=1, max_value=MAX_BATCH, default=1)


class RedemptionUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=Redemption._meta.get_field("name").max_length)
    quota = serializers.IntegerField(required=False, min_value=1, max_value=MAX_QUOTA)
    status = serializers.ChoiceField(
        choices=[int(RedemptionStatus.ENABLED), int(RedemptionStatus.DISABLED)], required=False
    )


class OptionUpdateSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=64)
    value = serializers.CharField(allow_blank=True, max_length=100_000, trim_whitespace=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        spec = OPTION_SPECS.get(data["key"])
        if spec is None:
            raise serializers.ValidationError({"key": f"unknown option {data['key']!r}"})
        value = data["value"].strip()
        try:
            spec.parse(value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise serializers.ValidationError({"value": f"invalid value for {data['key']}: {exc}"}) from None
        data["value"] = value
        return data
