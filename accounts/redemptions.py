"""Redemption codes: generate batches, redeem one (an atomic conditional update), export.

A code is 32 hex characters (a UUID without hyphens), the original's format; only its digest is
stored. Redeeming flips the row from enabled to used in one conditional UPDATE, so two people
racing with the same code can never both be credited.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterable

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.models import QUOTA_PER_USD, ConsumeLog, LogType

from . import keys
from .models import Redemption, RedemptionStatus, User

MAX_BATCH = 100
MAX_QUOTA = 10**15
CODE_RE = re.compile(r"^[0-9a-fA-F]{32}$")


class RedeemError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def redemption_code_generate() -> str:
    return uuid.uuid4().hex


def redemptions_create(*, name: str, quota: int, count: int, created_by: User | None) -> list[tuple[Redemption, str]]:
    """Create `count` codes worth `quota` each; returns (row, raw code) pairs, the only time the
    raw codes exist outside their holders' hands."""
    name = name.strip()
    if not name or len(name) > Redemption._meta.get_field("name").max_length:
        raise ValueError("the name must have 1 to 64 characters")
    if not 1 <= count <= MAX_BATCH:
        raise ValueError(f"the count must be between 1 and {MAX_BATCH}")
    if not 0 < quota <= MAX_QUOTA:
        raise ValueError("the quota must be a positive number")
    created: list[tuple[Redemption, str]] = []
    with transaction.atomic():
        for _ in range(count):
            code = redemption_code_generate()
            row = Redemption.objects.create(
                name=name,
                key_digest=keys.digest(code),
                display_prefix=code[:8],
                quota=quota,
                created_by=created_by,
            )
            created.append((row, code))
    return created


def redemption_redeem(*, user: User, code: str) -> Redemption:
    """Credit `user` with the code's quota; the code can be used exactly once."""
    code = (code or "").strip()
    if not CODE_RE.match(code):
        raise RedeemError("a redemption code is 32 characters of 0-9 and a-f")
    digest = keys.digest(code.lower())
    with transaction.atomic():
        claimed = Redemption.objects.filter(key_digest=digest, status=RedemptionStatus.ENABLED).update(
            status=RedemptionStatus.USED, redeemed_at=timezone.now(), redeemed_by=user
        )
        row = Redemption.objects.filter(key_digest=digest).first()
        if not claimed:
            if row is None:
                raise RedeemError("no such redemption code")
            if row.status == RedemptionStatus.USED:
                raise RedeemError("this code has already been used")
            raise RedeemError("this code is disabled")
        assert row is not None
        User.objects.filter(pk=user.pk).update(quota=F("quota") + row.quota)
        ConsumeLog.objects.create(
            type=LogType.TOPUP,
            user=user,
            username=user.username,
            quota=row.quota,
            content=f"redeemed code {row.display_prefix}… ({row.name}) for ${row.quota / QUOTA_PER_USD:,.2f}",
        )
    user.refresh_from_db(fields=["quota"])
    return row


CSV_HEADER = ["id", "name", "code", "quota", "usd", "status", "created_at", "redeemed_at", "redeemed_by"]


def redemptions_csv(rows: Iterable[tuple[Redemption, str | None]]) -> str:
    """CSV of codes; the code column holds the raw code when known (just generated), else its prefix."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row, code in rows:
        writer.writerow(
            [
                row.pk,
                row.name,
                code or f"{row.display_prefix}…",
                row.quota,
                f"{row.quota / QUOTA_PER_USD:.6f}",
                RedemptionStatus(row.status).label,
                row.created_at.isoformat(),
                row.redeemed_at.isoformat() if row.redeemed_at else "",
                row.redeemed_by.username if row.redeemed_by else "",
            ]
        )
    return out.getvalue()
