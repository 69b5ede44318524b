"""Public `/api` routes of the original: notice/about, register, login, logout, e-mail codes, reset.

The same rules as the web pages apply (RegisterEnabled, PasswordRegisterEnabled,
PasswordLoginEnabled, EmailVerificationEnabled, the domain allow-list, invite rewards), and the
strict CRITICAL_RATE_LIMIT guards every route here that checks a secret or sends mail
(accounts.ratelimit, by URL name).
"""

from __future__ import annotations

import secrets
import string

from allauth.account.forms import ResetPasswordForm, default_token_generator
from allauth.account.models import EmailAddress
from allauth.account.utils import url_str_to_user_pk
from django.contrib.auth import authenticate, login, logout
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from oneapi_site.api_envelope import ApiFailure, ok

from .api_serializers import LoginSerializer, RegisterSerializer, ResetSerializer
from .models import Role, User
from .runtime_options import email_domain_allowed, get_option, get_options
from .serializers import user_json
from .services import inviter_by_code, user_register

CODE_TTL = 600  # seconds an e-mailed code stays valid, as the original's 10 minutes
CODE_ALPHABET = string.ascii_uppercase + string.digits


def _code_key(email: str) -> str:
    return f"email-code:{email.strip().lower()}"


def _valid_email(value: str) -> str:
    value = (value or "").strip()
    try:
        validate_email(value)
    except DjangoValidationError:
        raise exceptions.ValidationError({"email": "is not a valid e-mail address"}) from None
    return value


def email_taken(email: str) -> bool:
    return (
        EmailAddress.objects.filter(email__iexact=email).exists() or User.objects.filter(email__iexact=email).exists()
    )


class OptionTextView(APIView):
    """`/api/notice`, `/api/about`, `/api/home_page_content`: one option's text."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    option = "Notice"

    def get(self, request: Request) -> Response:
        return ok(get_option(self.option))


class RegisterView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        opts = get_options("RegisterEnabled", "PasswordRegisterEnabled", "EmailVerificationEnabled")
        if not opts["RegisterEnabled"]:
            raise ApiFailure("registration is closed on this server")
        if not opts["PasswordRegisterEnabled"]:
            raise ApiFailure("registration with a password is turned off; use another sign-in method")
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        email = data["email"]
        if opts["EmailVerificationEnabled"]:
            if not email or not data["verification_code"]:
                raise ApiFailure("this server verifies e-mail addresses: send email and verification_code")
            expected = cache.get(_code_key(email))
            if not expected or not secrets.compare_digest(str(expected), data["verification_code"].strip().upper()):
                raise ApiFailure("the verification code is wrong or has expired")
        if email and not email_domain_allowed(email):
            raise ApiFailure("sign-ups from this e-mail domain are not allowed")
        if email and email_taken(email):
            raise ApiFailure("this e-mail address is already used by another account")
        inviter = inviter_by_code(data["aff_code"])
        if data["aff_code"] and inviter is None:
            raise ApiFailure("the invite code (aff_code) is not valid")
        user = user_register(username=data["username"], password=data["password"], email=email, inviter=inviter)
        if email:
            cache.delete(_code_key(email))
        return ok(user_json(user))


class LoginView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if user is None:
            raise ApiFailure("wrong username or password, or the user is disabled")
        assert isinstance(user, User)
        if user.role < Role.ROOT and not get_option("PasswordLoginEnabled"):
            raise ApiFailure("logging in with a password is turned off; use another sign-in method")
        if (
            get_option("EmailVerificationEnabled")
            and EmailAddress.objects.filter(user=user).exists()
            and not EmailAddress.objects.filter(user=user, verified=True).exists()
        ):
            raise ApiFailure("verify your e-mail address first (the link is in the e-mail we sent)")
        login(request._request, user, backend="django.contrib.auth.backends.ModelBackend")
        return ok(
            {k: v for k, v in user_json(user).items() if k in {"id", "username", "display_name", "role", "status", "group"}}
        )


class LogoutView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        logout(request._request)
        return ok()


class VerificationView(APIView):
    """`GET /api/verification?email=`: e-mail a 6-character code for `POST /api/user/register`."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        email = _valid_email(request.query_params.get("email", ""))
        if not email_domain_allowed(email):
            raise ApiFailure("sign-ups from this e-mail domain are not allowed")
        if email_taken(email):
            raise ApiFailure("this e-mail address is already used by another account")
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
        cache.set(_code_key(email), code, CODE_TTL)
        site = get_option("SystemName")
        send_mail(
            f"{site}: your verification code",
            f"Your verification code is {code}. It is valid for {CODE_TTL // 60} minutes.",
            None,
            [email],
        )
        return ok()


class ResetPasswordEmailView(APIView):
    """`GET /api/reset_password?email=`: mail a reset link (answered the same whether or not the
    address has an account, so the route cannot tell who is registered)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        email = _valid_email(request.query_params.get("email", ""))
        form = ResetPasswordForm(data={"email": email})
        if form.is_valid():
            form.save(request._request)
        return ok(message="if this address has an account, a reset link is on its way")


class ResetPasswordView(APIView):
    """`POST /api/user/reset {email, token}`: the token is the `<uid>-<key>` part of the e-mailed
    link; as in the original, the server picks a new random password and returns it."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        serializer = ResetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        email, token = serializer.validated_data["email"], serializer.validated_data["token"].strip().strip("/")
        uid, _, key = token.rpartition("/")[2].partition("-")
        try:
            user = User.objects.filter(pk=url_str_to_user_pk(uid)).first() if uid and key else None
        except (ValueError, TypeError, OverflowError):
            user = None
        if (
            user is None
            or user.email.lower() != email.lower()
            or not user.is_active
            or not default_token_generator.check_token(user, key)
        ):
            raise ApiFailure("the reset link is invalid or has expired")
        password = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))
        user.set_password(password)
        user.save(update_fields=["password"])
        return ok(password)
