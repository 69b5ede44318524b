"""Prometheus metrics the relay records: a few counter increments per request.

Served by oneapi_site.metrics at /metrics. With PROMETHEUS_MULTIPROC_DIR set (several worker
processes), prometheus_client writes each value to a per-process mmap file and the scrape adds
them up; that directory must be in the environment before prometheus_client is imported.
Label children are cached here, so a request costs dict lookups plus the increments.

Labels stay bounded: `model` is only set once a channel serves it (a typo'd model name is not a
new series), `channel` is the channel id, `status` the HTTP status returned.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

ENABLED = bool(settings.ENABLE_PROMETHEUS_METRICS)
MAX_CACHED_CHILDREN = 20_000
QUOTA_PER_USD = 500_000

if ENABLED:
    from prometheus_client import Counter, Gauge, Histogram

    REQUESTS = Counter(
        "oneapi_relay_requests", "Relay requests answered", ["format", "model", "channel", "status"]
    )
    DURATION = Histogram(
        "oneapi_relay_request_duration_seconds",
        "Whole relay requests, from receipt to the last byte",
        ["format", "model", "channel"],
        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
    )
    FIRST_BYTE = Histogram(
        "oneapi_relay_first_byte_seconds",
        "From receipt to the first byte sent to the client (streams: time to first token)",
        ["format", "model", "channel"],
        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
    )
    TOKENS = Counter("oneapi_relay_tokens", "Tokens billed", ["model", "channel", "kind"])
    COST = Counter("oneapi_relay_cost_usd", "Cost billed to callers, in USD", ["model", "channel"])
    ERRORS = Counter("oneapi_relay_errors", "Requests answered with an error", ["model", "channel", "code"])
    UPSTREAM_ERRORS = Counter(
        "oneapi_relay_upstream_errors", "Failed upstream attempts (retried or not)", ["model", "channel", "status"]
    )
    RETRIES = Counter("oneapi_relay_retries", "Attempts on another channel after a failure", ["model"])
    RATE_LIMITED = Counter("oneapi_rate_limited", "Requests refused by a rate limit", ["limit"])
    STREAMS = Gauge(
        "oneapi_relay_streams_in_flight", "Streams being relayed now", multiprocess_mode="livesum"
    )

_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (id(metric), *labels)
    child = _children.get(key)
    if child is None:
        if len(_children) >= MAX_CACHED_CHILDREN:
            _children.clear()
        child = _children[key] = metric.labels(*labels)
    return child


def observe_request(
    fmt: str,
    model: str,
    channel: str,
    status: int,
    seconds: float,
    first_byte_seconds: float | None,
    error_code: str | None,
    retries: int,
) -> None:
    if not ENABLED:
        return
    _child(REQUESTS, fmt, model, channel, str(status)).inc()
    _child(DURATION, fmt, model, channel).observe(seconds)
    if first_byte_seconds is not None:
        _child(FIRST_BYTE, fmt, model, channel).observe(first_byte_seconds)
    if error_code is not None:
        _child(ERRORS, model, channel, error_code).inc()
    if retries:
        _child(RETRIES, model).inc(retries)


def usage(model: str, channel: str, prompt: int, completion: int, cached: int, quota: int) -> None:
    if not ENABLED:
        return
    if prompt:
        _child(TOKENS, model, channel, "prompt").inc(prompt)
    if completion:
        _child(TOKENS, model, channel, "completion").inc(completion)
    if cached:
        _child(TOKENS, model, channel, "cached").inc(cached)
    if quota:
        _child(COST, model, channel).inc(quota / QUOTA_PER_USD)


def upstream_error(model: str, channel: str, status: int | None) -> None:
    if ENABLED:
        _child(UPSTREAM_ERRORS, model, channel, str(status or "unreachable")).inc()


def rate_limited(limit: str) -> None:
    if ENABLED:
        _child(RATE_LIMITED, limit).inc()


def stream_opened() -> None:
    if ENABLED:
        STREAMS.inc()


def stream_closed() -> None:
    if ENABLED:
        STREAMS.dec()


def process_exit() -> None:
    """This worker stops: its live gauges (streams in flight) leave the sum."""
    if ENABLED and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
