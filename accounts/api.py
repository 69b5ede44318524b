"""Management API (`/api`) for the caller's account: status, self, access token and relay keys.

Compatible with the original's routes and JSON; a user only ever sees and changes its own keys
(another user's key id answers 404, as if it did not exist).
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

from django.contrib.auth import logout, update_session_auth_hash
from django.db import transaction
from django.db.models import QuerySet
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import QUOTA_PER_USD
from oneapi_site.api_envelope import ApiFailure, object_id, ok, page_bounds

from .api_serializers import SelfUpdateSerializer
from .authentication import IsUser
from .models import ApiKey, User
from .runtime_options import get_options
from .serializers import (
    TokenCreateSerializer,
    TokenStatusSerializer,
    TokenUpdateSerializer,
    refuse_unusable_enable,
    token_json,
    user_json,
)
from .services import AccountRefused, access_token_regenerate, api_key_create, user_delete

START_TIME = int(time.time())

# What /api/status shows: (JSON field, option key). Never a secret option.
STATUS_OPTIONS: tuple[tuple[str, str], ...] = (
    ("system_name", "SystemName"),
    ("logo", "Logo"),
    ("footer_html", "Footer"),
    ("server_address", "ServerAddress"),
    ("top_up_link", "TopUpLink"),
    ("chat_link", "ChatLink"),
    ("display_in_currency", "DisplayInCurrencyEnabled"),
    ("display_token_stat", "DisplayTokenStatEnabled"),
    ("email_verification", "EmailVerificationEnabled"),
    ("register_enabled", "RegisterEnabled"),
    ("password_login_enabled", "PasswordLoginEnabled"),
    ("password_register_enabled", "PasswordRegisterEnabled"),
    ("github_oauth", "GitHubOAuthEnabled"),
    ("github_client_id", "GitHubClientId"),
    ("oidc", "OidcEnabled"),
    ("oidc_client_id", "OidcClientId"),
)


def app_version() -> str:
    try:
        return "v" + metadata.version("oneapi-django")
    except metadata.PackageNotFoundError:
        return "v0.1.0"


def system_status() -> dict[str, Any]:
    values = get_options(*(key for _, key in STATUS_OPTIONS))
    data: dict[str, Any] = {"version": app_version(), "start_time": START_TIME, "quota_per_unit": QUOTA_PER_USD}
    data.update({field: values[key] for field, key in STATUS_OPTIONS})
    # The original's pages read these; Turnstile is not implemented here.
    data.update({"turnstile_check": False, "turnstile_site_key": ""})
    return data


def user_keys(user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-id")


def user_key_or_404(user: User, key_id: int) -> ApiKey:
    """The caller's own key; another user's key is reported exactly like a missing one."""
    api_key = user_keys(user).filter(pk=key_id).first()
    if api_key is None:
        raise exceptions.NotFound("no such token")
    return api_key


@transaction.atomic
def token_update(*, api_key: ApiKey, fields: dict[str, Any]) -> ApiKey:
    """Apply edited fields to a key; enabling it is refused while it is expired or exhausted."""
    for name, value in fields.items():
        setattr(api_key, name, value)
    if "status" in fields:
        refuse_unusable_enable(api_key=api_key, new_status=fields["status"])
    api_key.save(update_fields=list(fields))
    return api_key


class StatusView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return ok(system_status())


class UserSelfView(APIView):
    """`GET` the caller, `PUT` its username / display name / password, `DELETE` the account."""

    permission_classes = [IsUser]

    def get(self, request: Request) -> Response:
        return ok(user_json(request.user))

    def put(self, request: Request) -> Response:
        user = request.user
        serializer = SelfUpdateSerializer(data=request.data, context={"user": user})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        fields = []
        for name in ("username", "display_name"):
            if name in data:
                setattr(user, name, data[name])
                fields.append(name)
        if "password" in data:
            user.set_password(data["password"])
            fields.append("password")
        if fields:
            user.save(update_fields=fields)
        if "password" in data and request._request.user.is_authenticated:
            update_session_auth_hash(request._request, user)  # keep this session signed in
        return ok(user_json(user))

    def delete(self, request: Request) -> Response:
        try:
            user_delete(user=request.user)
        except AccountRefused as exc:
            raise ApiFailure(exc.message) from None
        logout(request._request)
        return ok()


class UserAccessTokenView(APIView):
    """`GET /api/user/token`: a new management access token, shown this once (the old one stops working)."""

    permission_classes = [IsUser]

    def get(self, request: Request) -> Response:
        return ok(access_token_regenerate(user=request.user))


class TokenCollectionView(APIView):
    """`GET /api/token/` lists, `POST` creates (the raw key is in `data.key`, once), `PUT` edits."""

    permission_classes = [IsUser]

    def get(self, request: Request) -> Response:
        offset, limit = page_bounds(request)
        keys = user_keys(request.user)
        return ok([token_json(k) for k in keys[offset : offset + limit]], total=keys.count())

    def post(self, request: Request) -> Response:
        serializer = TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, raw_key = api_key_create(user=request.user, **serializer.key_fields())
        return ok({**token_json(api_key), "key": raw_key})

    def put(self, request: Request) -> Response:
        api_key = user_key_or_404(request.user, object_id(request))
        if request.query_params.get("status_only", "").lower() not in {"", "0", "false"}:
            status_serializer = TokenStatusSerializer(data=request.data)
            status_serializer.is_valid(raise_exception=True)
            fields = {"status": int(status_serializer.validated_data["status"])}
        else:
            serializer = TokenUpdateSerializer(data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            fields = serializer.key_fields()
        return ok(token_json(token_update(api_key=api_key, fields=fields)))


class TokenSearchView(APIView):
    permission_classes = [IsUser]

    def get(self, request: Request) -> Response:
        keyword = request.query_params.get("keyword", "").strip()
        offset, limit = page_bounds(request)
        keys = user_keys(request.user)
        if keyword:
            keys = keys.filter(name__icontains=keyword)
        return ok([token_json(k) for k in keys[offset : offset + limit]], total=keys.count())


class TokenDetailView(APIView):
    permission_classes = [IsUser]

    def get(self, request: Request, key_id: int) -> Response:
        return ok(token_json(user_key_or_404(request.user, key_id)))

    def delete(self, request: Request, key_id: int) -> Response:
        user_key_or_404(request.user, key_id).delete()
        return ok()
