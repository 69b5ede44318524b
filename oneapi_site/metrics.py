"""GET /metrics: Prometheus text format, behind METRICS_TOKEN.

404 when ENABLE_PROMETHEUS_METRICS is off; 403 while no METRICS_TOKEN is configured (metrics
name models, channels and spend: never public by default); 401 for a missing or wrong token,
sent as `Authorization: Bearer <token>` (Prometheus' `authorization` / `bearer_token`) or
`?token=`.

What is served: the relay's counters (relay.metrics), summed over every worker process of this
server when PROMETHEUS_MULTIPROC_DIR is set, plus channel gauges read from the database at
scrape time (status, last test's response time, balance), which cost nothing per request.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class ChannelCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        from channels_app.models import Channel, ChannelStatus

        status = GaugeMetricFamily(
            "oneapi_channel_status", "Channel status (1 enabled, 2 disabled, 3 auto-disabled)", labels=["channel", "name", "type"]
        )
        enabled = GaugeMetricFamily("oneapi_channel_enabled", "1 when the channel takes traffic", labels=["channel"])
        response = GaugeMetricFamily(
            "oneapi_channel_test_response_seconds", "Response time of the last channel test", labels=["channel"]
        )
        balance = GaugeMetricFamily("oneapi_channel_balance", "Balance last read from the provider", labels=["channel"])
        rows = Channel.objects.values_list("id", "name", "type", "status", "response_time", "balance", "balance_updated_at")
        for channel_id, name, kind, state, response_ms, amount, balance_at in rows:
            label = str(channel_id)
            status.add_metric([label, name, str(kind)], state)
            enabled.add_metric([label], 1 if state == ChannelStatus.ENABLED else 0)
            response.add_metric([label], (response_ms or 0) / 1000)
            if balance_at is not None:
                balance.add_metric([label], amount)
        yield from (status, enabled, response, balance)


def _token(request: HttpRequest) -> str:
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.GET.get("token", "")


def render_metrics() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        served = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        from relay import metrics  # noqa: F401 (registers the relay's metrics in the default registry)

        served = generate_latest(REGISTRY)
    channels = CollectorRegistry()
    channels.register(ChannelCollector())
    return served + generate_latest(channels)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not settings.ENABLE_PROMETHEUS_METRICS:
        return HttpResponse("metrics are turned off (ENABLE_PROMETHEUS_METRICS)\n", status=404, content_type="text/plain")
    if not settings.METRICS_TOKEN:
        return HttpResponse("set METRICS_TOKEN to enable /metrics\n", status=403, content_type="text/plain")
    if not hmac.compare_digest(_token(request).encode(), settings.METRICS_TOKEN.encode()):
        response = HttpResponse("a valid metrics token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)
