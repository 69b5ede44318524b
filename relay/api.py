"""The `/v1` routes that are not hot, served by DRF: the model list, and JSON 404s for the rest.

A key may use the models that some enabled channel serves to its owner's group, narrowed by the
key's own allow-list. Answers use OpenAI's shapes, or Anthropic's when the caller sends
`anthropic-version` (Claude SDKs list models through the same path).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_app.models import Ability, ChannelStatus
from channels_app.types import type_info
from oneapi_site.exception_handler import relay_error_response

from .authentication import RelayKeyAuthentication
from .errors import NotFound, RelayError
from .keyauth import KeyEntry
from .routes import is_relay_route

MODEL_CREATED = 1626777600  # the fixed `created` the original reports for every model


@dataclass(frozen=True)
class ModelInfo:
    id: str
    owned_by: str


def models_for_key(entry: KeyEntry) -> list[ModelInfo]:
    """Distinct models of enabled abilities for the key's group, within the key's allow-list.

    `owned_by` is the type of the highest-priority channel serving the model.
    """
    abilities = (
        Ability.objects.filter(group=entry.group, enabled=True, channel__status=ChannelStatus.ENABLED)
        .order_by("model", "-priority", "channel_id")
        .values_list("model", "channel__type")
    )
    owners: dict[str, str] = {}
    for model, channel_type in abilities:
        if entry.allowed_models and model not in entry.allowed_models:
            continue
        owners.setdefault(model, type_info(channel_type).name.lower().replace(" ", "-"))
    return [ModelInfo(id=model, owned_by=owner) for model, owner in owners.items()]


def wants_anthropic(request: Request) -> bool:
    return bool(request.META.get("HTTP_ANTHROPIC_VERSION"))


def openai_model(info: ModelInfo) -> dict[str, Any]:
    return {"id": info.id, "object": "model", "created": MODEL_CREATED, "owned_by": info.owned_by}


def anthropic_model(info: ModelInfo) -> dict[str, Any]:
    created = datetime.fromtimestamp(MODEL_CREATED, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": info.id, "display_name": info.id, "created_at": created}


class ModelListView(APIView):
    authentication_classes = [RelayKeyAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        models = models_for_key(request.auth)
        if wants_anthropic(request):
            data = [anthropic_model(m) for m in models]
            return Response(
                {
                    "data": data,
                    "has_more": False,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                }
            )
        return Response({"object": "list", "data": [openai_model(m) for m in models]})


class ModelDetailView(APIView):
    authentication_classes = [RelayKeyAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request, model: str) -> Response:
        for info in models_for_key(request.auth):
            if info.id == model:
                return Response(anthropic_model(info) if wants_anthropic(request) else openai_model(info))
        raise NotFound(
            f"The model '{model}' does not exist or this key may not use it", code="model_not_found", param="model"
        )


@csrf_exempt
def unknown_relay_route(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any other `/v1/...` path and method: a JSON 404 in the caller's format, never an HTML page."""
    if is_relay_route(request.method or "", request.path):
        # Only reachable when Django serves the hot path itself (`runserver`, WSGI) instead of the ASGI app.
        message = f"{request.method} {request.path} is served by the ASGI relay app (oneapi_site.asgi:application)"
    else:
        message = f"Unknown route {request.method} {request.path}"
    error = RelayError(message, status=404, type="invalid_request_error", code="unknown_url")
    return relay_error_response(error, request)
