"""Writes on accounts: users, relay keys, access tokens, first-start bootstrap."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from django.conf import settings
from django.db import transaction

from . import keys
from .models import DEFAULT_GROUP, ApiKey, Group, KeyStatus, Role, User

logger = logging.getLogger(__name__)

ROOT_INITIAL_QUOTA = 500_000_000_000_000  # the original seeds root with this much quota


def api_key_create(
    *,
    user: User,
    name: str,
    remain_quota: int = 0,
    unlimited_quota: bool = False,
    expires_at: datetime | None = None,
    allowed_models: str = "",
    subnet: str = "",
    raw_body: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a relay key; returns the row and the raw key, which is never retrievable again."""
    body = keys.strip_key_prefix(raw_body) if raw_body else keys.generate_key_body()
    api_key = ApiKey.objects.create(
        user=user,
        name=name,
        digest=keys.digest(body),
        display_prefix=keys.display_prefix(body),
        remain_quota=remain_quota,
        unlimited_quota=unlimited_quota,
        expires_at=expires_at,
        allowed_models=allowed_models,
        subnet=subnet,
    )
    return api_key, keys.key_prefix() + body


def api_key_set_status(*, api_key: ApiKey, status: KeyStatus) -> ApiKey:
    api_key.status = status
    api_key.save(update_fields=["status"])
    return api_key


def access_token_regenerate(*, user: User, raw: str | None = None) -> str:
    """Issue a new management access token for `user`; the old one stops working."""
    token = raw or keys.generate_access_token()
    user.access_token_digest = keys.digest(token)
    user.save(update_fields=["access_token_digest"])
    return token


@transaction.atomic
def bootstrap_first_start() -> None:
    """Create the default group and, on an empty database, the root user.

    Never the original's well-known `123456`: INITIAL_ROOT_PASSWORD if set, else a random
    password written once to the server log. INITIAL_ROOT_TOKEN / INITIAL_ROOT_ACCESS_TOKEN
    become root's relay key and management token, so a deployment can be scripted from nothing.
    """
    Group.objects.get_or_create(name=DEFAULT_GROUP)
    if User.objects.exists():
        return
    password = settings.INITIAL_ROOT_PASSWORD or secrets.token_urlsafe(12)
    root = User.objects.create_user(
        "root", password, role=Role.ROOT, display_name="Root User", quota=ROOT_INITIAL_QUOTA
    )
    if not settings.INITIAL_ROOT_PASSWORD:
        banner = "=" * 64
        logger.warning(
            "\n%s\nCreated user 'root' with password: %s\nIt is shown only this once: log in at /admin/ and change it.\n%s",
            banner,
            password,
            banner,
        )
    if settings.INITIAL_ROOT_TOKEN:
        api_key_create(
            user=root, name="initial root key", unlimited_quota=True, raw_body=settings.INITIAL_ROOT_TOKEN
        )
    if settings.INITIAL_ROOT_ACCESS_TOKEN:
        access_token_regenerate(user=root, raw=settings.INITIAL_ROOT_ACCESS_TOKEN)
