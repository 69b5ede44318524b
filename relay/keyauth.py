"""Relay key authentication shared by the lean relay app and DRF views.

A `KeyEntry` is the cached, immutable view of one key with its owner; `check_key` applies
every rule that can be decided without the database (expiry, status, model allow-list,
subnet). Whether the key and user are *still* enabled and funded is enforced by the atomic
quota hold itself, so a key disabled in the admin stops working at once on every worker.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from accounts.keys import digest, split_channel_pin, strip_key_prefix
from billing.pricing import ratio_units

from .errors import AuthenticationFailed, InsufficientQuota, PermissionDenied

KEY_ENABLED, KEY_DISABLED, KEY_EXPIRED, KEY_EXHAUSTED = 1, 2, 3, 4
USER_ENABLED = 1
ROLE_ADMIN = 10

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class KeyEntry:
    key_id: int
    key_name: str
    status: int
    expires_at: float | None  # Unix seconds; None = never
    remain_quota: int
    unlimited_quota: bool
    allowed_models: frozenset[str]  # empty = all models
    subnets: tuple[IPNetwork, ...]  # empty = any address
    user_id: int
    username: str
    user_status: int
    user_role: int
    group: str
    group_ratio: int  # in billing.pricing.RATIO_SCALE units (1.0 = 10,000)
    user_quota: int = 0  # as loaded: a hint for relay.billing_flow, never a decision (the hold decides)


@dataclass(frozen=True, slots=True)
class PresentedKey:
    digest: str
    pinned_channel: int | None


KEY_ENTRY_SQL = (
    "SELECT k.id, k.name, k.status, k.expires_at, k.remain_quota, k.unlimited_quota, k.models, k.subnet,"
    " u.id, u.username, u.status, u.role, g.name, g.ratio, u.quota"
    " FROM api_keys k JOIN users u ON u.id = k.user_id JOIN groups g ON g.id = u.group_id"
    " WHERE k.digest = %s"
)


def to_unix(value: Any) -> float | None:
    """A datetime column as read by sqlite3 (text) or psycopg (datetime) -> Unix seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def parse_subnets(raw: str) -> tuple[IPNetwork, ...]:
    networks = []
    for part in raw.replace("\n", ",").split(","):
        part = part.strip()
        if part:
            networks.append(ipaddress.ip_network(part, strict=False))
    return tuple(networks)


def entry_from_row(row: Iterable[Any]) -> KeyEntry:
    (key_id, name, status, expires_at, remain, unlimited, models, subnet, user_id, username, ustatus, role, group, ratio, user_quota) = row
    return KeyEntry(
        key_id=int(key_id),
        key_name=name,
        status=int(status),
        expires_at=to_unix(expires_at),
        remain_quota=int(remain),
        unlimited_quota=bool(unlimited),
        allowed_models=frozenset(m.strip() for m in (models or "").split(",") if m.strip()),
        subnets=parse_subnets(subnet or ""),
        user_id=int(user_id),
        username=username,
        user_status=int(ustatus),
        user_role=int(role),
        group=group,
        group_ratio=ratio_units(ratio),
        user_quota=int(user_quota),
    )


def extract_key(headers: Mapping[str, str]) -> PresentedKey | None:
    """The key from `Authorization: Bearer`, `x-api-key` or `api-key` (lower-cased header names)."""
    raw = ""
    auth = headers.get("authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        raw = value.strip() if scheme.lower() == "bearer" else auth.strip()
    if not raw:
        raw = headers.get("x-api-key", "").strip() or headers.get("api-key", "").strip()
    if not raw:
        return None
    body, pinned = split_channel_pin(strip_key_prefix(raw))
    return PresentedKey(digest=digest(body), pinned_channel=pinned)


def check_key(entry: KeyEntry, *, client_ip: str | None, now: float | None = None) -> None:
    """Refuse keys that cannot be used at all, with the original's reasons."""
    if entry.user_status != USER_ENABLED:
        raise PermissionDenied("the user of this key is disabled", code="user_disabled")
    if entry.status == KEY_DISABLED:
        raise AuthenticationFailed("this API key is disabled", code="api_key_disabled")
    now = time.time() if now is None else now
    if entry.status == KEY_EXPIRED or (entry.expires_at is not None and entry.expires_at <= now):
        raise AuthenticationFailed("this API key has expired", code="api_key_expired")
    if entry.status == KEY_EXHAUSTED or (not entry.unlimited_quota and entry.remain_quota <= 0):
        raise InsufficientQuota("this API key's quota is used up")
    if entry.status != KEY_ENABLED:
        raise AuthenticationFailed("this API key cannot be used", code="api_key_disabled")
    if entry.subnets:
        try:
            address = ipaddress.ip_address(client_ip or "")
        except ValueError:
            address = None
        if address is None or not any(address in net for net in entry.subnets):
            raise PermissionDenied(
                f"this API key may only be used from {', '.join(map(str, entry.subnets))}; your address is {client_ip}",
                code="ip_not_allowed",
            )


def check_model_allowed(entry: KeyEntry, model: str) -> None:
    if entry.allowed_models and model not in entry.allowed_models:
        raise PermissionDenied(f"this API key may not use model {model}", code="model_not_allowed", param="model")


def check_pin_allowed(entry: KeyEntry, presented: PresentedKey) -> None:
    if presented.pinned_channel is not None and entry.user_role < ROLE_ADMIN:
        raise PermissionDenied("only admins may pin a channel with a key suffix", code="channel_pin_forbidden")


def load_key_entry_sync(key_digest: str) -> KeyEntry | None:
    """For DRF views (sync, off the hot path): the same query through Django's connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(KEY_ENTRY_SQL, [key_digest])
        row = cursor.fetchone()
    return entry_from_row(row) if row else None
