"""Forms of the end-user pages (keys, account, top-up). Admin forms are in forms.py."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone

from billing.admin import UsdField, usd_to_quota

from .models import ApiKey, User
from .serializers import normalise_list

MAX_KEY_USD = Decimal(10**9)


class KeyForm(forms.Form):
    name = forms.CharField(max_length=ApiKey._meta.get_field("name").max_length, strip=True)
    unlimited_quota = forms.BooleanField(
        label="Unlimited quota", required=False, help_text="The key may spend everything your account has."
    )
    quota_usd = UsdField(
        label="Quota ($)",
        required=False,
        min_value=Decimal(0),
        max_value=MAX_KEY_USD,
        help_text="What this key may spend, in USD. Ignored when unlimited.",
    )
    expires_at = forms.DateTimeField(
        label="Expires",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="UTC. Empty = never expires.",
    )
    allowed_models = forms.CharField(
        label="Allowed models",
        required=False,
        max_length=10000,
        help_text="Comma-separated. Empty = every model your group can use.",
        widget=forms.TextInput(attrs={"id": "id_allowed_models"}),
    )
    subnet = forms.CharField(
        label="Allowed IP ranges",
        required=False,
        max_length=1024,
        help_text="Comma-separated addresses or CIDR ranges (e.g. 10.0.0.0/8). Empty = any address.",
    )

    def __init__(self, *args: Any, creating: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.creating = creating

    def clean_expires_at(self) -> datetime | None:
        value: datetime | None = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now() and self.creating:
            raise forms.ValidationError("The expiry must be in the future (or leave it empty: never).")
        return value

    def clean_allowed_models(self) -> str:
        return normalise_list(self.cleaned_data.get("allowed_models", ""))

    def clean_subnet(self) -> str:
        value = normalise_list(self.cleaned_data.get("subnet", ""))
        for part in filter(None, value.split(",")):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise forms.ValidationError(f"{part!r} is not an IP address or CIDR range.") from None
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not cleaned.get("unlimited_quota") and not cleaned.get("quota_usd") and "quota_usd" not in self.errors:
            self.add_error("quota_usd", "Give the key a quota in USD, or tick 'Unlimited quota'.")
        return cleaned

    def key_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        unlimited = bool(data["unlimited_quota"])
        return {
            "name": data["name"],
            "unlimited_quota": unlimited,
            "remain_quota": 0 if unlimited else usd_to_quota(data["quota_usd"]),
            "expires_at": data["expires_at"],
            "allowed_models": data["allowed_models"],
            "subnet": data["subnet"],
        }

    @classmethod
    def initial_for(cls, api_key: ApiKey) -> dict[str, Any]:
        return {
            "name": api_key.name,
            "unlimited_quota": api_key.unlimited_quota,
            "quota_usd": (Decimal(api_key.remain_quota) / 500_000).quantize(Decimal("0.000001")),
            "expires_at": api_key.expires_at,
            "allowed_models": api_key.allowed_models.replace(",", ", "),
            "subnet": api_key.subnet.replace(",", ", "),
        }


class DisplayNameForm(forms.Form):
    display_name = forms.CharField(
        label="Display name", max_length=User._meta.get_field("display_name").max_length, required=False, strip=True
    )


class RedeemForm(forms.Form):
    code = forms.CharField(
        label="Redemption code",
        max_length=64,
        strip=True,
        widget=forms.TextInput(attrs={"placeholder": "32 characters, e.g. 0f1e2d3c…", "autocomplete": "off"}),
    )


class DeleteAccountForm(forms.Form):
    confirm_username = forms.CharField(label="Type your username to confirm", max_length=64, strip=True)
    password = forms.CharField(label="Password", widget=forms.PasswordInput, required=False)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("confirm_username") != self.user.username:
            self.add_error("confirm_username", "That is not your username.")
        if self.user.has_usable_password() and not self.user.check_password(cleaned.get("password") or ""):
            self.add_error("password", "The password is not correct.")
        return cleaned
