"""Channel tests: one minimal chat request through the channel's own adaptor.

Used by the admin action, `/api/channel/test/<id>` and the periodic Celery task alike. Records
the outcome on the channel; with AutomaticDisableChannelEnabled a channel whose upstream
refuses its key or billing, or that answers slower than ChannelDisableThreshold, is
auto-disabled (status 3), and with AutomaticEnableChannelEnabled an auto-disabled channel that
passes is enabled again (never a manually disabled one). See channels_app.health.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import orjson
from django.conf import settings
from django.utils import timezone

from relay import ir
from relay.adaptors import get_adaptor
from relay.options import defaults, parse_option
from relay.snapshot import channel_entry
from relay.upstream import parse_error_body

from .health import channel_auto_disable, channel_auto_enable, should_auto_disable
from .models import Channel
from .types import UNSUPPORTED, type_info


@dataclass(frozen=True)
class ChannelTestResult:
    success: bool
    response_ms: int
    message: str
    upstream_status: int | None = None
    auth_failure: bool = False
    too_slow: bool = False


def _option(key: str) -> object:
    from relay.models import Option

    row = Option.objects.filter(key=key).first()
    if row is None:
        return defaults()[key]
    try:
        return parse_option(key, row.value)
    except ValueError:
        return defaults()[key]


def test_model_for(channel: Channel) -> str:
    if channel.testing_model:
        return channel.testing_model
    served = channel.served_models()
    return served[0] if served else "gpt-4o-mini"


async def _send(channel: Channel, model: str) -> ChannelTestResult:
    entry = channel_entry(channel)
    adaptor = get_adaptor(entry.protocol)
    upstream_model = entry.model_mapping.get(model, model)
    wire = adaptor.upstream_format(entry, "chat", model=upstream_model)
    request = ir.Request(
        model=upstream_model,
        messages=[ir.Message(role="user", parts=[ir.TextPart(settings.TEST_PROMPT)])],
        max_output_tokens=settings.TEST_MAX_TOKENS,
    )
    body = orjson.dumps(adaptor.encode_request(request, model=upstream_model, wire=wire))
    url = adaptor.build_url(entry, "chat", model=upstream_model, stream=False, wire=wire)
    timeout = aiohttp.ClientTimeout(total=settings.RELAY_TIMEOUT or 60, connect=settings.RELAY_CONNECT_TIMEOUT)
    started = time.monotonic()
    try:
        headers = await adaptor.authorize(entry, url=url, headers=adaptor.build_headers(entry, wire=wire), body=body)
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            async with session.post(url, data=body, headers=headers, proxy=settings.RELAY_PROXY or None) as response:
                raw = await response.read()
                elapsed = int((time.monotonic() - started) * 1000)
                if response.status >= 400:
                    message, code, kind = parse_error_body(raw, response.status)
                    auth = response.status in (401, 403) or should_auto_disable(
                        status=response.status, code=code, kind=kind, message=message
                    )
                    return ChannelTestResult(False, elapsed, message, response.status, auth)
                answer = adaptor.decode_response(orjson.loads(raw), wire=wire)
                if not any(isinstance(part, ir.TextPart) and part.text for part in answer.parts):
                    return ChannelTestResult(False, elapsed, "the upstream answer has no text", response.status)
                return ChannelTestResult(True, elapsed, "ok", response.status)
    except (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError, ir.ConversionError, ValueError) as exc:
        return ChannelTestResult(False, int((time.monotonic() - started) * 1000), f"request failed: {exc.__class__.__name__}: {exc}")


def channel_test(*, channel: Channel, model: str | None = None) -> ChannelTestResult:
    """Send a minimal chat request to `channel`, record the outcome, apply auto-disable/enable."""
    if type_info(channel.type).protocol == UNSUPPORTED:
        result = ChannelTestResult(False, 0, f"{type_info(channel.type).name} channels are not supported yet")
    else:
        result = asyncio.run(_send(channel, model or test_model_for(channel)))
    threshold_ms = float(_option("ChannelDisableThreshold")) * 1000  # type: ignore[arg-type]
    if result.success and threshold_ms and result.response_ms > threshold_ms:
        result = ChannelTestResult(
            False, result.response_ms, f"too slow: {result.response_ms} ms (threshold {threshold_ms:.0f} ms)",
            result.upstream_status, too_slow=True,
        )
    channel.test_time = timezone.now()
    channel.response_time = result.response_ms
    channel.last_test_error = "" if result.success else result.message[:1000]
    # A queryset update: these fields are not routed on, so no cache reload on every worker.
    Channel.objects.filter(pk=channel.pk).update(
        test_time=channel.test_time, response_time=channel.response_time, last_test_error=channel.last_test_error
    )
    if not result.success and (result.auth_failure or result.too_slow) and _option("AutomaticDisableChannelEnabled"):
        channel_auto_disable(channel=channel, reason=f"channel test failed: {result.message}")
    elif result.success and _option("AutomaticEnableChannelEnabled"):
        channel_auto_enable(channel=channel, reason=f"channel test passed in {result.response_ms} ms")
    return result
