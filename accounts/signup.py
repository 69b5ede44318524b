"""The sign-up form's extra fields: allauth's ACCOUNT_SIGNUP_FORM_CLASS.

Its fields join allauth's sign-up form (the optional invite code, pre-filled from `?aff=`) and
its `signup()` grants the rewards. This module must not import allauth's forms: they import it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.http import HttpRequest

from .adapters import INVITE_SESSION_KEY
from .runtime_options import get_option
from .services import inviter_by_code, user_signup_rewards

# Letters, digits and . _ - only: usernames appear in logs, CSV exports and URLs.
username_validators = [
    RegexValidator(r"^[A-Za-z0-9_.-]+$", "Use only letters, digits and . _ - in the username."),
]


class InviteSignupForm(forms.Form):
    aff_code = forms.CharField(
        label="Invite code (optional)",
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"placeholder": "Invite code (optional)", "autocomplete": "off"}),
    )

    def clean_aff_code(self) -> str:
        code = (self.cleaned_data.get("aff_code") or "").strip()
        if code and inviter_by_code(code) is None:
            raise forms.ValidationError("This invite code is not valid. Check it or leave the field empty.")
        return code

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # Only the password sign-up form has password1 (this class is also the OAuth sign-up's base).
        if "password1" in self.fields and not get_option("PasswordRegisterEnabled"):
            raise forms.ValidationError("Sign-up with a password is turned off; use another sign-in method.")
        return cleaned

    def signup(self, request: HttpRequest, user: Any) -> None:
        """Called by allauth once the user is saved (password and OAuth sign-up forms alike)."""
        code = self.cleaned_data.get("aff_code") or request.session.get(INVITE_SESSION_KEY, "")
        request.session.pop(INVITE_SESSION_KEY, None)
        user_signup_rewards(user=user, inviter=inviter_by_code(code))
