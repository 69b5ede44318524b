"""django-allauth hooks: who may sign up, e-mail rules, rewards, OAuth apps from our options.

allauth runs every sign-up, log-in, password reset, e-mail verification and OAuth flow of the
web pages; these adapters plug in the original's options (RegisterEnabled, the e-mail domain
allow-list, QuotaForNewUser and the invite rewards, GitHub / OpenID Connect client settings), so
an operator configures it all in the admin's options page, nothing in code.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.models import EmailAddress
from allauth.account.stages import EmailVerificationStage
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp, SocialLogin
from django import forms
from django.http import HttpRequest

from .models import User
from .runtime_options import email_domain_allowed, get_option, get_options
from .services import inviter_by_code, user_signup_rewards

INVITE_SESSION_KEY = "oneapi_aff_code"


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(get_option("RegisterEnabled"))

    def clean_email(self, email: str) -> str:
        if not email_domain_allowed(email):
            raise forms.ValidationError("Sign-ups from this e-mail domain are not allowed here.")
        return super().clean_email(email)

    def get_login_stages(self) -> list[str]:
        return [
            "accounts.adapters.OptionalEmailVerificationStage" if path.endswith(".EmailVerificationStage") else path
            for path in super().get_login_stages()
        ]


class OptionalEmailVerificationStage(EmailVerificationStage):
    """Mandatory verification only when EmailVerificationEnabled is on and the user signed up with
    an e-mail address: users an operator created, imported or registered through the API with
    no address (root first of all) log in without one."""

    def handle(self) -> tuple[Any, bool]:
        user = self.login.user
        if not get_option("EmailVerificationEnabled") or not EmailAddress.objects.filter(user=user).exists():
            return None, True
        return super().handle()


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return bool(get_option("RegisterEnabled"))

    def save_user(self, request: HttpRequest, sociallogin: SocialLogin, form: Any = None) -> Any:
        user: User = super().save_user(request, sociallogin, form)
        uid = sociallogin.account.uid
        if sociallogin.account.provider == "github":
            user.github_id = uid[:64]
        else:
            user.oidc_id = uid[:128]
        user.save(update_fields=["github_id", "oidc_id"])
        if form is None:
            # Auto sign-up: no form, so no form.signup() to grant the rewards (accounts.signup).
            user_signup_rewards(user=user, inviter=inviter_by_code(request.session.pop(INVITE_SESSION_KEY, "")))
        return user

    def list_apps(self, request: HttpRequest | None, provider: str | None = None, client_id: str | None = None) -> list[SocialApp]:
        apps = super().list_apps(request, provider=provider, client_id=client_id)
        for app in option_apps():
            if provider in (None, app.provider, app.provider_id) and client_id in (None, app.client_id):
                apps.append(app)
        return apps


def option_apps() -> list[SocialApp]:
    """GitHub and OpenID Connect apps described by the original's option keys (not saved rows)."""
    opts = get_options(
        "GitHubOAuthEnabled",
        "GitHubClientId",
        "GitHubClientSecret",
        "OidcEnabled",
        "OidcClientId",
        "OidcClientSecret",
        "OidcWellKnown",
    )
    apps: list[SocialApp] = []
    if opts["GitHubOAuthEnabled"] and opts["GitHubClientId"]:
        apps.append(
            SocialApp(provider="github", name="GitHub", client_id=opts["GitHubClientId"], secret=opts["GitHubClientSecret"])
        )
    if opts["OidcEnabled"] and opts["OidcClientId"] and opts["OidcWellKnown"]:
        apps.append(
            SocialApp(
                provider="openid_connect",
                provider_id="oidc",
                name="OpenID Connect",
                client_id=opts["OidcClientId"],
                secret=opts["OidcClientSecret"],
                settings={"server_url": opts["OidcWellKnown"]},
            )
        )
    return apps
