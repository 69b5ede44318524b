"""allauth's sign-up view and log-in form with the original's rules (see settings ACCOUNT_FORMS)."""

from __future__ import annotations

from typing import Any

from allauth.account.forms import LoginForm
from allauth.account.views import SignupView
from django import forms
from django.http import HttpRequest, HttpResponse

from .adapters import INVITE_SESSION_KEY
from .models import Role
from .runtime_options import get_option


class InviteSignupView(SignupView):
    """allauth's sign-up page, remembering `?aff=` (also for a sign-up that continues through OAuth)."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        code = request.GET.get("aff", "").strip()[:32]
        if code:
            request.session[INVITE_SESSION_KEY] = code
        return super().get(request, *args, **kwargs)

    def get_initial(self) -> dict[str, Any]:
        initial = super().get_initial()
        code = self.request.GET.get("aff") or self.request.session.get(INVITE_SESSION_KEY)
        if code:
            initial["aff_code"] = code.strip()[:32]
        return initial


class PasswordLoginForm(LoginForm):
    """allauth's log-in form; with PasswordLoginEnabled off only root may log in with a password."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        user = getattr(self, "user", None)
        if user is not None and user.role < Role.ROOT and not get_option("PasswordLoginEnabled"):
            raise forms.ValidationError("Logging in with a password is turned off; use another sign-in method.")
        return cleaned
