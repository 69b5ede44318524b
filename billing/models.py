"""Prices, the per-request charge record and the consume log.

Prices are in USD per 1M tokens (what humans read on provider pages); the quota unit is the
original's: 500,000 quota = 1 USD. `RequestCharge` is the ledger row of one relay request:
created when its estimate is held, settled exactly once (idempotent by request id).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

QUOTA_PER_USD = 500_000


def quota_to_usd(quota: int) -> Decimal:
    return (Decimal(quota) / QUOTA_PER_USD).quantize(Decimal("0.000001"))


class PriceFields(models.Model):
    """USD per 1M tokens. Empty cached / cache-write prices mean "same as input"."""

    input_price = models.DecimalField("input $/1M", max_digits=14, decimal_places=6)
    output_price = models.DecimalField("output $/1M", max_digits=14, decimal_places=6)
    cached_input_price = models.DecimalField(
        "cached input $/1M", max_digits=14, decimal_places=6, null=True, blank=True
    )
    cache_write_price = models.DecimalField(
        "cache write (5 min) $/1M", max_digits=14, decimal_places=6, null=True, blank=True
    )
    cache_write_1h_price = models.DecimalField(
        "cache write (1 h) $/1M", max_digits=14, decimal_places=6, null=True, blank=True
    )

    class Meta:
        abstract = True


class ModelPrice(PriceFields):
    model = models.CharField(max_length=128, unique=True)

    class Meta:
        db_table = "model_prices"
        ordering = ["model"]

    def __str__(self) -> str:
        return self.model


class ChannelModelPrice(PriceFields):
    """A channel's own price for a model; wins over the global price."""

    channel = models.ForeignKey("channels_app.Channel", on_delete=models.CASCADE, related_name="prices")
    model = models.CharField(max_length=128)

    class Meta:
        db_table = "channel_model_prices"
        constraints = [models.UniqueConstraint(fields=["channel", "model"], name="channel_price_unique")]

    def __str__(self) -> str:
        return f"{self.model} @ channel {self.channel_id}"


class ChargeStatus(models.IntegerChoices):
    HELD = 1, "held"
    SETTLED = 2, "settled"
    REFUNDED = 3, "refunded"


class RequestCharge(models.Model):
    """What one request holds and finally costs. Unique request id makes settlement idempotent."""

    # Every relay request inserts one row and updates it once, so each index is paid twice per
    # request (bench/RESULTS.md): only the lookups the code makes are indexed. The request id
    # finds a charge; the partial index finds stale holds and holds only requests in flight.
    request_id = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    held_quota = models.BigIntegerField(default=0)
    quota = models.BigIntegerField(default=0, help_text="Final cost once settled.")
    status = models.SmallIntegerField(choices=ChargeStatus.choices, default=ChargeStatus.HELD)
    created_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "request_charges"
        indexes = [
            models.Index(fields=["created_at"], condition=models.Q(status=ChargeStatus.HELD), name="request_charges_held"),
        ]

    def __str__(self) -> str:
        return self.request_id

    @property
    def cost_usd(self) -> Decimal:
        return quota_to_usd(self.quota)


class LogType(models.IntegerChoices):
    UNKNOWN = 0, "unknown"
    TOPUP = 1, "top-up"
    CONSUME = 2, "consume"
    MANAGE = 3, "manage"
    SYSTEM = 4, "system"
    TEST = 5, "test"
    TOOL = 7, "tool"  # an MCP tool call (the original fork's LogTypeTool)
    ERROR = 8, "error"


class ConsumeLog(models.Model):
    """One row per relay request (and per top-up / system event), like the original's `logs`."""

    # One row per relay request: every index here costs each request a B-tree insert. `type` has
    # a handful of values, so it has none. `user` keeps its own beside (user, created_at): it
    # serves a user's newest-first page (ORDER BY id) without sorting all their rows.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    type = models.SmallIntegerField(choices=LogType.choices, default=LogType.CONSUME)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    username = models.CharField(max_length=30, blank=True, default="", db_index=True)
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    token_name = models.CharField("key name", max_length=64, blank=True, default="")
    model_name = models.CharField("model asked", max_length=128, blank=True, default="", db_index=True)
    upstream_model = models.CharField("model used", max_length=128, blank=True, default="")
    channel = models.ForeignKey(
        "channels_app.Channel", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    prompt_tokens = models.IntegerField(default=0)
    completion_tokens = models.IntegerField(default=0)
    cached_tokens = models.IntegerField(default=0)
    cache_write_tokens = models.IntegerField(default=0)
    cache_write_1h_tokens = models.IntegerField(default=0)
    quota = models.BigIntegerField(default=0)
    elapsed_ms = models.IntegerField(default=0)
    is_stream = models.BooleanField(default=False)
    request_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    status_code = models.SmallIntegerField(default=200)
    content = models.TextField(blank=True, default="")

    class Meta:
        db_table = "logs"
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "created_at"])]
        verbose_name = "consume log"

    def __str__(self) -> str:
        return f"{self.request_id or self.pk}"

    @property
    def cost_usd(self) -> Decimal:
        return quota_to_usd(self.quota)


class UsageDaily(models.Model):
    """Usage per UTC day x user x key x model x channel, rolled up from the consume log.

    Written by billing.tasks.rollup_usage (recomputes whole days, so re-running is harmless);
    charts over long periods read this instead of scanning `logs`, and it outlives
    LOG_RETENTION_DAYS.
    """

    day = models.DateField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    model_name = models.CharField(max_length=128, blank=True, default="")
    channel = models.ForeignKey(
        "channels_app.Channel", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    requests = models.IntegerField(default=0, help_text="Consume log rows (billed requests).")
    errors = models.IntegerField(default=0, help_text="Error log rows (refunded requests).")
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    quota = models.BigIntegerField(default=0)
    elapsed_ms = models.BigIntegerField(default=0, help_text="Sum over the requests (divide for the mean).")

    class Meta:
        db_table = "usage_daily"
        ordering = ["-day", "-quota"]
        indexes = [
            models.Index(fields=["day", "user"]),
            models.Index(fields=["day", "channel"]),
            models.Index(fields=["day", "model_name"]),
        ]
        verbose_name = "daily usage"
        verbose_name_plural = "daily usage"

    def __str__(self) -> str:
        return f"{self.day} {self.model_name}"

    @property
    def cost_usd(self) -> Decimal:
        return quota_to_usd(self.quota)
