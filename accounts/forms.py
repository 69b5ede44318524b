"""Admin forms for users and relay keys.

Quota counters change under the relay's feet, so change forms never write them back: they
offer an adjustment in USD that the admin applies as a relative update.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils import timezone

from billing.admin import UsdField, usd_to_quota

from .models import ApiKey, User


def _normalize_list(value: str) -> str:
    return ",".join(item.strip() for item in value.replace("\n", ",").split(",") if item.strip())


class UserAddForm(UserCreationForm):
    top_up_usd = UsdField(
        label="Plus quota ($)", required=False, min_value=Decimal(0), help_text="Added to the quota above, in USD."
    )

    class Meta:
        model = User
        fields = ("username", "display_name", "email", "group", "role", "quota")

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("top_up_usd"):
            cleaned["quota"] = (cleaned.get("quota") or 0) + usd_to_quota(cleaned["top_up_usd"])
        return cleaned


class UserChangeForm(forms.ModelForm):
    top_up_usd = UsdField(
        label="Top up ($)",
        required=False,
        help_text="Added to the remaining quota (negative to deduct); 1 USD = 500,000 quota.",
    )

    class Meta:
        model = User
        fields = (
            "username",
            "display_name",
            "email",
            "group",
            "role",
            "status",
            "aff_code",
            "inviter",
            "github_id",
            "oidc_id",
        )

    def clean_top_up_usd(self) -> Decimal | None:
        amount: Decimal | None = self.cleaned_data.get("top_up_usd")
        if amount and self.instance.quota + usd_to_quota(amount) < 0:
            raise forms.ValidationError("That would leave a negative quota.")
        return amount

    @property
    def top_up_quota(self) -> int:
        amount = self.cleaned_data.get("top_up_usd")
        return usd_to_quota(amount) if amount else 0


class ApiKeyFieldsMixin(forms.ModelForm):
    def clean_allowed_models(self) -> str:
        return _normalize_list(self.cleaned_data.get("allowed_models", ""))

    def clean_subnet(self) -> str:
        subnet = _normalize_list(self.cleaned_data.get("subnet", ""))
        for cidr in subnet.split(",") if subnet else []:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise forms.ValidationError(f"{cidr!r} is not an IP address or CIDR range.") from None
        return subnet


class ApiKeyAddForm(ApiKeyFieldsMixin):
    remain_quota_usd = UsdField(
        label="Quota ($)", required=False, min_value=Decimal(0), help_text="Alternatively, the quota in USD."
    )

    class Meta:
        model = ApiKey
        fields = ("user", "name", "remain_quota", "unlimited_quota", "expires_at", "allowed_models", "subnet")
        labels = {"remain_quota": "Quota (units)"}
        help_texts = {"remain_quota": "500,000 = 1 USD. Ignored when the key is unlimited."}

    def clean_expires_at(self) -> Any:
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at and expires_at <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return expires_at

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        usd = cleaned.get("remain_quota_usd")
        if usd is not None:
            units = usd_to_quota(usd)
            if cleaned.get("remain_quota") not in (None, 0, units):
                raise forms.ValidationError("Give the quota in units or in USD, not both.")
            cleaned["remain_quota"] = units
        if (cleaned.get("remain_quota") or 0) < 0:
            self.add_error("remain_quota", "The quota cannot be negative.")
        return cleaned


class ApiKeyChangeForm(ApiKeyFieldsMixin):
    adjust_usd = UsdField(
        label="Adjust quota ($)",
        required=False,
        help_text="Added to the remaining quota (negative to deduct); 1 USD = 500,000 quota.",
    )

    class Meta:
        model = ApiKey
        fields = ("name", "status", "unlimited_quota", "expires_at", "allowed_models", "subnet")

    def clean_adjust_usd(self) -> Decimal | None:
        amount: Decimal | None = self.cleaned_data.get("adjust_usd")
        if amount and self.instance.remain_quota + usd_to_quota(amount) < 0:
            raise forms.ValidationError("That would leave a negative quota.")
        return amount

    @property
    def adjust_quota(self) -> int:
        amount = self.cleaned_data.get("adjust_usd")
        return usd_to_quota(amount) if amount else 0
