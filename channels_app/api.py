"""Management API (`/api/channel/...`) for upstream channels: admins only, the original's routes.

Every write goes through `Channel.full_clean()`, so the API refuses exactly what the admin
refuses, with the message naming the field. Saving a channel rebuilds its abilities (signal).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import IsAdmin
from oneapi_site.api_envelope import envelope, object_id, ok, page_bounds

from .models import Channel, ChannelStatus
from .serializers import ChannelSerializer, api_errors, channel_json


def channel_or_404(channel_id: int) -> Channel:
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        raise exceptions.NotFound("no such channel")
    return channel


def channel_save(*, channel: Channel, fields: dict[str, Any]) -> Channel:
    """Apply fields, validate the whole channel as the admin would, save (abilities follow)."""
    for name, value in fields.items():
        setattr(channel, name, value)
    try:
        channel.full_clean()
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(api_errors(exc)) from None
    channel.save()
    return channel


def split_keys(key: str) -> list[str]:
    """One channel per line of `key`, as the original's batch add; a JSON credential stays whole."""
    if key.lstrip().startswith("{"):
        return [key]
    return [line.strip() for line in key.splitlines() if line.strip()] or [""]


@transaction.atomic
def channels_create(*, fields: dict[str, Any]) -> list[Channel]:
    return [channel_save(channel=Channel(), fields={**fields, "key": key}) for key in split_keys(fields["key"])]


@transaction.atomic
def channel_update(*, channel: Channel, fields: dict[str, Any]) -> Channel:
    return channel_save(channel=channel, fields=fields)


def channel_search(keyword: str) -> QuerySet[Channel]:
    condition = Q(name__icontains=keyword) | Q(base_url__icontains=keyword) | Q(model_names__icontains=keyword)
    if keyword.isdigit():
        condition |= Q(pk=int(keyword))
    return Channel.objects.filter(condition).order_by("-id")


def paged(request: Request, channels: QuerySet[Channel]) -> Response:
    offset, limit = page_bounds(request)
    return ok([channel_json(c) for c in channels[offset : offset + limit]], total=channels.count())


class ChannelCollectionView(APIView):
    """`GET /api/channel/` lists, `POST` creates (one channel per key line), `PUT` edits by `id`."""

    permission_classes = [IsAdmin]

    def get(self, request: Request) -> Response:
        channels = Channel.objects.order_by("-id")
        status = request.query_params.get("status", "")
        if status.isdigit():
            channels = channels.filter(status=int(status))
        return paged(request, channels)

    def post(self, request: Request) -> Response:
        serializer = ChannelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = channels_create(fields=serializer.channel_fields())
        if len(created) == 1:
            return ok(channel_json(created[0]))
        return ok([channel_json(c) for c in created], message=f"created {len(created)} channels")

    def put(self, request: Request) -> Response:
        channel = channel_or_404(object_id(request))
        serializer = ChannelSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        return ok(channel_json(channel_update(channel=channel, fields=serializer.channel_fields())))


class ChannelSearchView(APIView):
    permission_classes = [IsAdmin]

    def get(self, request: Request) -> Response:
        return paged(request, channel_search(request.query_params.get("keyword", "").strip()))


class ChannelDetailView(APIView):
    permission_classes = [IsAdmin]

    def get(self, request: Request, channel_id: int) -> Response:
        return ok(channel_json(channel_or_404(channel_id)))

    def delete(self, request: Request, channel_id: int) -> Response:
        channel_or_404(channel_id).delete()
        return ok()


class DisabledChannelsView(APIView):
    """`DELETE /api/channel/disabled`: remove every manually or automatically disabled channel."""

    permission_classes = [IsAdmin]

    def delete(self, request: Request) -> Response:
        disabled = Channel.objects.filter(status__in=[ChannelStatus.MANUALLY_DISABLED, ChannelStatus.AUTO_DISABLED])
        count = 0
        with transaction.atomic():
            for channel in disabled:  # one by one, so delete signals see each channel
                channel.delete()
                count += 1
        return ok(count)


class ChannelTestView(APIView):
    """`GET /api/channel/test/<id>?model=`: the original's `{success, message, time}` (seconds)."""

    permission_classes = [IsAdmin]

    def get(self, request: Request, channel_id: int) -> Response:
        from .testing import channel_test, test_model_for

        channel = channel_or_404(channel_id)
        model = request.query_params.get("model", "").strip() or test_model_for(channel)
        result = channel_test(channel=channel, model=model)
        body = envelope(success=result.success, message=result.message, time=result.response_ms / 1000, model=model)
        return Response(body)


class ChannelBalanceView(APIView):
    """`GET /api/channel/update_balance/<id>`: ask the provider for the channel's balance, as the
    original's `{success, message, balance}`; a type with no balance endpoint says so plainly.
    Without an id, every enabled channel whose type has one is refreshed."""

    permission_classes = [IsAdmin]

    def get(self, request: Request, channel_id: int | None = None) -> Response:
        from .balance import BalanceError, BalanceUnsupported, balance_supported, channel_refresh_balance

        if channel_id is None:
            refreshed, failed = 0, []
            for channel in Channel.objects.filter(status=ChannelStatus.ENABLED):
                if not balance_supported(channel):
                    continue
                try:
                    channel_refresh_balance(channel=channel)
                    refreshed += 1
                except BalanceError as exc:
                    failed.append(f"#{channel.pk}: {exc}")
            message = f"refreshed {refreshed} channel(s)" + (f"; failed: {'; '.join(failed)}" if failed else "")
            return Response(envelope(success=not failed, message=message))
        channel = channel_or_404(channel_id)
        try:
            balance = channel_refresh_balance(channel=channel)
        except (BalanceUnsupported, BalanceError) as exc:
            return Response(envelope(success=False, message=str(exc), balance=channel.balance))
        return Response(envelope(success=True, message="", balance=balance))
