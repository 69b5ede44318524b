"""Runtime options (the original's `options` table) and cache generations.

The relay keeps in-memory copies of keys, channels, prices and options. Whenever one of those
tables changes, a signal bumps its row in `cache_generations`; every worker polls that tiny
table (CACHE_CHANGE_POLL_SECONDS) and reloads what changed, so replicas and worker processes
agree within a second without a per-request query.
"""

from __future__ import annotations

from django.db import models


class Option(models.Model):
    key = models.CharField(max_length=64, primary_key=True)
    value = models.TextField(blank=True, default="")

    class Meta:
        db_table = "options"
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class CacheGeneration(models.Model):
    name = models.CharField(max_length=32, primary_key=True)
    version = models.BigIntegerField(default=0)

    class Meta:
        db_table = "cache_generations"

    def __str__(self) -> str:
        return f"{self.name}={self.version}"


class StoredResponse(models.Model):
    """A Responses API answer kept by the gateway, so `previous_response_id`, retrieval and
    `input_items` work on every backend (the upstream may be Anthropic or Gemini, which keep
    no state). The id is the one the caller saw (ours, or the upstream's on pass-through)."""

    id = models.CharField(max_length=96, primary_key=True)
    user_id = models.BigIntegerField(db_index=True)
    api_key_id = models.BigIntegerField(null=True)
    model = models.CharField(max_length=128)
    created_at = models.DateTimeField(db_index=True)
    input_items = models.JSONField(default=list, help_text="The whole conversation input, previous turns expanded.")
    response = models.JSONField(default=dict, help_text="The response object as the caller received it.")

    class Meta:
        db_table = "stored_responses"

    def __str__(self) -> str:
        return self.id


class Trace(models.Model):
    """Timings of one relayed request (relay.tracing); the consume log row has the same request id.

    The *_ms columns are milliseconds after the request was received; empty when the request
    never got that far. They describe the attempt that answered; `retries` counts the others.
    """

    request_id = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(db_index=True, help_text="When the request was received.")
    user_id = models.BigIntegerField(null=True)
    api_key_id = models.BigIntegerField(null=True)
    channel_id = models.BigIntegerField(null=True)
    model = models.CharField(max_length=128, blank=True, default="")
    caller_format = models.CharField(max_length=16, blank=True, default="")
    is_stream = models.BooleanField(default=False)
    status_code = models.SmallIntegerField(default=0)
    retries = models.SmallIntegerField(default=0)
    forwarded_ms = models.FloatField("forwarded upstream", null=True, blank=True)
    upstream_first_byte_ms = models.FloatField("first upstream byte", null=True, blank=True)
    upstream_done_ms = models.FloatField("upstream done", null=True, blank=True)
    first_client_byte_ms = models.FloatField("first client byte", null=True, blank=True)
    completed_ms = models.FloatField("completed", null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "traces"
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.request_id
