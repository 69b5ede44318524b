"""Writes on accounts: users, relay keys, access tokens, first-start bootstrap."""

from __future__ import annotations

import logging
import secrets
import string
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F

from billing.models import ConsumeLog, LogType

from . import keys
from .models import DEFAULT_GROUP, ApiKey, Group, KeyStatus, Role, User, UserStatus
from .runtime_options import get_options

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


# ------------------------------------------------------------------------------ sign-up and invites

AFF_CODE_LENGTH = 6
_AFF_ALPHABET = string.ascii_letters + string.digits


class AccountRefused(Exception):
    """A refused account operation; `forbidden` when the operator's role is the reason (HTTP 403)."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.forbidden = forbidden


def aff_code_ensure(*, user: User) -> str:
    """The user's invite code, created on first use (codes are short, so retry on a collision)."""
    if user.aff_code:
        return user.aff_code
    for _ in range(10):
        code = "".join(secrets.choice(_AFF_ALPHABET) for _ in range(AFF_CODE_LENGTH))
        if User.objects.filter(aff_code=code).exists():
            continue
        if User.objects.filter(pk=user.pk, aff_code__isnull=True).update(aff_code=code):
            user.aff_code = code
            return code
        user.refresh_from_db(fields=["aff_code"])
        if user.aff_code:
            return user.aff_code
    raise RuntimeError("could not find a free invite code")


def inviter_by_code(code: str) -> User | None:
    code = (code or "").strip()
    if not code:
        return None
    return User.objects.filter(aff_code=code, status=UserStatus.ENABLED).first()


def _grant(*, user: User, quota: int, content: str) -> None:
    if quota <= 0:
        return
    User.objects.filter(pk=user.pk).update(quota=F("quota") + quota)
    ConsumeLog.objects.create(type=LogType.SYSTEM, user=user, username=user.username, quota=quota, content=content)


@transaction.atomic
def user_signup_rewards(*, user: User, inviter: User | None) -> None:
    """What a new user gets (QuotaForNewUser, plus QuotaForInvitee when invited) and what its
    inviter gets (QuotaForInviter), each written to the logs as the original does."""
    opts = get_options("QuotaForNewUser", "QuotaForInvitee", "QuotaForInviter")
    if inviter is not None and inviter.pk != user.pk:
        User.objects.filter(pk=user.pk).update(inviter=inviter)
        user.inviter = inviter
        _grant(user=user, quota=opts["QuotaForInvitee"], content=f"invited by {inviter.username}: welcome bonus")
        _grant(user=inviter, quota=opts["QuotaForInviter"], content=f"invited {user.username}: invite reward")
    _grant(user=user, quota=opts["QuotaForNewUser"], content="new user bonus")
    aff_code_ensure(user=user)
    user.refresh_from_db(fields=["quota"])


def user_register(*, username: str, password: str, email: str = "", inviter: User | None = None) -> User:
    """A password sign-up outside the web pages (`POST /api/user/register`)."""
    with transaction.atomic():
        user = User.objects.create_user(username, password, email=email)
        if email:
            # Verified by the caller (a code sent to it), so allauth's log-in accepts it.
            from allauth.account.models import EmailAddress

            EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        user_signup_rewards(user=user, inviter=inviter)
    return user


@transaction.atomic
def user_quota_adjust(*, user: User, quota: int, by: User | None, remark: str = "") -> User:
    """Add (or with a negative amount, take) quota as an operator; never below zero."""
    if quota == 0:
        raise AccountRefused("the amount must not be zero")
    if not User.objects.filter(pk=user.pk, quota__gte=-quota).update(quota=F("quota") + quota):
        raise AccountRefused("that would leave the user a negative quota")
    user.refresh_from_db(fields=["quota"])
    who = by.username if by else "the system"
    ConsumeLog.objects.create(
        type=LogType.TOPUP if quota > 0 else LogType.MANAGE,
        user=user,
        username=user.username,
        quota=quota,
        content=f"{who} adjusted the quota by {quota:,}" + (f": {remark}" if remark else ""),
    )
    return user


@transaction.atomic
def user_delete(*, user: User) -> None:
    """Delete an account but keep its ledger: the row stays (status deleted) so that logs and
    charges still name it, while everything personal and every credential goes."""
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount

    if user.role >= Role.ROOT:
        raise AccountRefused("the root user cannot be deleted")
    ApiKey.objects.filter(user=user).delete()
    EmailAddress.objects.filter(user=user).delete()
    SocialAccount.objects.filter(user=user).delete()
    # "#" is refused by every sign-up path's username rules, so the freed name cannot collide.
    user.username = f"#deleted-{user.pk}"[:30]
    user.display_name = ""
    user.email = ""
    user.github_id = ""
    user.oidc_id = ""
    user.aff_code = None
    user.access_token_digest = None
    user.status = UserStatus.DELETED
    user.set_unusable_password()
    user.save()


MANAGE_ACTIONS = ("disable", "enable", "delete", "promote", "demote")


def user_manage(*, operator: User, target: User, action: str) -> User:
    """The original's `POST /api/user/manage` rules: nobody manages a user of the same or a higher
    role (root excepted); only root promotes; root is never disabled, deleted or demoted."""
    if action not in MANAGE_ACTIONS:
        raise AccountRefused(f"unknown action {action!r}; use one of {', '.join(MANAGE_ACTIONS)}")
    if operator.role <= target.role and operator.role < Role.ROOT:
        raise AccountRefused("no permission to manage a user of the same or a higher role", forbidden=True)
    if target.pk == operator.pk and action in ("disable", "delete", "demote"):
        raise AccountRefused(f"you cannot {action} yourself")
    if action == "disable":
        if target.role >= Role.ROOT:
            raise AccountRefused("the root user cannot be disabled")
        target.status = UserStatus.DISABLED
        target.save(update_fields=["status"])
    elif action == "enable":
        target.status = UserStatus.ENABLED
        target.save(update_fields=["status"])
    elif action == "delete":
        user_delete(user=target)
    elif action == "promote":
        if operator.role < Role.ROOT:
            raise AccountRefused("only the root user can promote users", forbidden=True)
        if target.role >= Role.ADMIN:
            raise AccountRefused("this user is already an admin")
        target.role = Role.ADMIN
        target.save(update_fields=["role"])
    elif action == "demote":
        if target.role >= Role.ROOT:
            raise AccountRefused("the root user cannot be demoted")
        if target.role <= Role.USER:
            raise AccountRefused("this user is already a common user")
        target.role = Role.USER
        target.save(update_fields=["role"])
    return target
