"""Authentication and role checks for the management API (`/api`).

Callers authenticate with a session cookie (CSRF enforced on unsafe methods) or with the
management access token, sent as `Authorization: <token>` (the original's form) or
`Authorization: Bearer <token>`. Only the token's digest is stored, so a lookup is one index hit.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from . import keys
from .models import Role, User, UserStatus

RELAY_KEY_PREFIXES = ("sk-", "laisky-")


def access_token_from_header(header: str) -> str | None:
    """The token in an Authorization value, or None when the value is empty or a relay key."""
    value = header.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    if not value or " " in value:
        return None  # empty, or another scheme (Basic ...) that is not ours
    if value.startswith((keys.key_prefix(), *RELAY_KEY_PREFIXES)):
        return None
    return value


class AccessTokenAuthentication(BaseAuthentication):
    """`Authorization: [Bearer ]<access token>`; a relay key (`sk-...`) is left to other authenticators."""

    # When False, an unknown token is not an error: the next authenticator (a relay key) may accept it.
    strict = True

    def authenticate(self, request: Request) -> tuple[User, str] | None:
        token = access_token_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
        if token is None:
            return None
        user = User.objects.select_related("group").filter(access_token_digest=keys.digest(token)).first()
        if user is None:
            if not self.strict:
                return None
            raise exceptions.AuthenticationFailed("invalid access token")
        if user.status != UserStatus.ENABLED:
            raise exceptions.PermissionDenied("this user is disabled")
        return user, token

    def authenticate_header(self, request: Request) -> str:
        # Any value here makes DRF answer 401 (not 403) to unauthenticated requests.
        return 'Bearer realm="api"'


class LenientAccessTokenAuthentication(AccessTokenAuthentication):
    strict = False


class CsrfSessionAuthentication(SessionAuthentication):
    """Django's session login; DRF enforces CSRF on unsafe methods for session-authenticated calls."""


def _role(request: Request) -> int | None:
    user: Any = request.user
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "role", None)


class IsUser(BasePermission):
    """A signed-in, enabled user with at least the common role (guests are refused)."""

    message = "this operation needs a signed-in user"

    def has_permission(self, request: Request, view: Any) -> bool:
        role = _role(request)
        return role is not None and role >= Role.USER


class IsAdmin(BasePermission):
    message = "this operation needs an admin"

    def has_permission(self, request: Request, view: Any) -> bool:
        role = _role(request)
        return role is not None and role >= Role.ADMIN


class IsRoot(BasePermission):
    message = "this operation needs the root user"

    def has_permission(self, request: Request, view: Any) -> bool:
        role = _role(request)
        return role is not None and role >= Role.ROOT
