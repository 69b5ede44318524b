"""Relay key authentication for the DRF views (`/v1/models`, the cost lookup).

The same rules as the lean relay app (`relay.keyauth`): a key in `Authorization: Bearer`,
`x-api-key` or `api-key`, looked up by digest. Refusals keep the relay's error (status, type,
code) so the exception handler can render them in the caller's format.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.models import User

from .errors import AuthenticationFailed, PermissionDenied, RelayError
from .keyauth import KEY_DISABLED, USER_ENABLED, KeyEntry, check_key, extract_key, load_key_entry_sync


class RelayAuthError(exceptions.APIException):
    """A relay refusal wrapped as a DRF exception, so DRF runs its unauthenticated bookkeeping."""

    def __init__(self, error: RelayError) -> None:
        super().__init__(detail=error.message, code=error.code)
        self.status_code = error.status
        self.relay_error = error


def request_headers(request: Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


class RelayKeyAuthentication(BaseAuthentication):
    """`request.user` is the key's owner, `request.auth` the cached `KeyEntry`."""

    # When False, an unknown key is not an error (it may be a management access token).
    unknown_is_error = True

    def authenticate(self, request: Request) -> tuple[User, KeyEntry] | None:
        presented = extract_key(request_headers(request))
        if presented is None:
            return None
        entry = load_key_entry_sync(presented.digest)
        if entry is None:
            if not self.unknown_is_error:
                return None
            raise RelayAuthError(AuthenticationFailed("invalid API key"))
        try:
            self.check(entry, request)
        except RelayError as error:
            raise RelayAuthError(error) from None
        user = User.objects.select_related("group").filter(pk=entry.user_id).first()
        if user is None:
            raise RelayAuthError(AuthenticationFailed("invalid API key"))
        return user, entry

    def check(self, entry: KeyEntry, request: Request) -> None:
        check_key(entry, client_ip=request.META.get("REMOTE_ADDR"))

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class KeyOwnerAuthentication(RelayKeyAuthentication):
    """For reading what a key already did: an expired or exhausted key may still look up its costs.

    An unknown key is not an error here (it may be a management access token in the same header).
    """

    unknown_is_error = False

    def check(self, entry: KeyEntry, request: Request) -> None:
        if entry.user_status != USER_ENABLED:
            raise PermissionDenied("the user of this key is disabled", code="user_disabled")
        if entry.status == KEY_DISABLED:
            raise AuthenticationFailed("this API key is disabled", code="api_key_disabled")
