"""Typed request and response schemas for the management API (`/api`) and the DRF `/v1` views,
attached from outside through drf-spectacular view extensions, so the views stay as they are.

A view that gets its own `@extend_schema` (or serializer_class) keeps it: an extension only
fills in what drf-spectacular cannot infer from a plain APIView returning the original's
envelope `{"success", "message", "data"}`. Failures come back in the same envelope (HTTP 200
for refused input, as the original; 401, 403 and 404 otherwise), so `data` may be null.
https://drf-spectacular.readthedocs.io/en/latest/customization.html#step-5-extensions
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view

from .openapi_schemas import BOOL, COUNT, INT, NUMBER, Schema, arr, nullable, obj, ref, string

MANAGEMENT_COMPONENTS: dict[str, Schema] = {
    "Envelope": obj(
        {"success": BOOL, "message": string(), "data": {}},
        ("success", "message"),
        description="The original One API's envelope; on failure `success` is false and `data` null.",
    ),
    "Token": obj(
        {
            "id": INT,
            "user_id": INT,
            "name": string(),
            "key_prefix": string(),
            "status": {"type": "integer", "enum": [1, 2, 3, 4], "description": "1 enabled, 2 disabled, 3 expired, 4 exhausted"},
            "created_time": INT,
            "accessed_time": INT,
            "expired_time": {"type": "integer", "description": "Unix seconds; -1 = never"},
            "remain_quota": INT,
            "unlimited_quota": BOOL,
            "used_quota": INT,
            "models": string(),
            "subnet": string(),
            "key": string(description="The raw key: only in the answer to its creation."),
        },
        ("id", "name", "status"),
    ),
    "User": obj(
        {
            "id": INT,
            "username": string(),
            "display_name": string(),
            "role": INT,
            "status": INT,
            "email": string(),
            "group": string(),
            "quota": INT,
            "used_quota": INT,
            "request_count": INT,
        },
        ("id", "username"),
    ),
    "Channel": obj(
        {
            "id": INT,
            "type": INT,
            "type_name": string(),
            "name": string(),
            "status": INT,
            "base_url": nullable(string()),
            "models": string(),
            "group": string(),
            "priority": INT,
            "weight": INT,
            "used_quota": INT,
        },
        ("id", "type", "name", "status"),
        description="An upstream channel; `key` is write-only and never returned.",
    ),
    "SystemStatus": obj(
        {"version": string(), "start_time": INT, "quota_per_unit": INT, "system_name": string()},
        ("version", "start_time"),
    ),
    "RequestCost": obj(
        {
            "id": INT,
            "created_time": INT,
            "user_id": INT,
            "request_id": string(),
            "quota": INT,
            "cost_usd": NUMBER,
            "status": string(),
        },
        ("id", "request_id", "quota", "cost_usd"),
    ),
    "ModelList": {
        "anyOf": [
            obj(
                {
                    "object": {"type": "string", "const": "list"},
                    "data": arr(obj({"id": string(), "object": string(), "created": INT, "owned_by": string()}, ("id",))),
                },
                ("object", "data"),
            ),
            obj(
                {
                    "data": arr(obj({"type": string(), "id": string(), "display_name": string()}, ("id",))),
                    "has_more": BOOL,
                    "first_id": nullable(string()),
                    "last_id": nullable(string()),
                },
                ("data",),
                description="Anthropic's shape, when the request sends `anthropic-version`.",
            ),
        ]
    },
    "Model": obj({"id": string()}, ("id",), description="OpenAI's model object, or Anthropic's with `anthropic-version`."),
    "InputItemList": obj(
        {"object": {"type": "string", "const": "list"}, "data": arr({}), "first_id": nullable(string()), "last_id": nullable(string()), "has_more": BOOL},
        ("object", "data", "has_more"),
    ),
    "DeletedResponse": obj({"id": string(), "object": string(), "deleted": BOOL}, ("id", "deleted")),
}


def envelope(data: Schema | None = None, **extra: Schema) -> Schema:
    properties: dict[str, Schema] = {"success": BOOL, "message": string()}
    if data is not None:
        properties["data"] = nullable(data)
    properties.update(extra)
    return obj(properties, ("success", "message"))


ENVELOPE_ERRORS = {401: ref("Envelope"), 403: ref("Envelope"), 404: ref("Envelope")}
RELAY_ERROR: Schema = {"anyOf": [ref("OpenAIError"), ref("AnthropicError")]}
RELAY_ERRORS = {400: RELAY_ERROR, 401: RELAY_ERROR, 403: RELAY_ERROR, 404: RELAY_ERROR, 429: RELAY_ERROR}
PAGE = [
    OpenApiParameter("p", int, description="Page number, from 0.", required=False),
    OpenApiParameter("size", int, description="Items per page (capped by MAX_ITEMS_PER_PAGE).", required=False),
]
KEYWORD = [OpenApiParameter("keyword", str, required=False)]
MANAGEMENT = ["Management"]
RELAY = ["Relay"]


def _ok(data: Schema | None = None, **extra: Schema) -> dict[int, Schema]:
    return {200: envelope(data, **extra), **ENVELOPE_ERRORS}


def _token_serializers() -> tuple[Any, Any]:
    from accounts.serializers import TokenCreateSerializer, TokenUpdateSerializer

    return TokenCreateSerializer, TokenUpdateSerializer


def _channel_serializer() -> Any:
    from channels_app.serializers import ChannelSerializer

    return ChannelSerializer


def _view_schemas() -> dict[str, dict[str, Any]]:
    """View class (dotted) -> {method: extend_schema(...)}; only the views that exist are patched."""
    token_create, token_update = _token_serializers()
    listing = {"total": COUNT}
    id_body = obj({"id": INT}, ("id",))
    return {
        "accounts.api.StatusView": {"get": extend_schema(tags=MANAGEMENT, summary="System status", responses=_ok(ref("SystemStatus")))},
        "accounts.api.UserSelfView": {"get": extend_schema(tags=MANAGEMENT, summary="The signed-in user", responses=_ok(ref("User")))},
        "accounts.api.UserAccessTokenView": {
            "get": extend_schema(
                tags=MANAGEMENT,
                summary="Regenerate the management access token (shown once; the old one stops working)",
                responses=_ok(string()),
            )
        },
        "accounts.api.TokenCollectionView": {
            "get": extend_schema(tags=MANAGEMENT, summary="List your relay keys", parameters=PAGE, responses=_ok(arr(ref("Token")), **listing)),
            "post": extend_schema(tags=MANAGEMENT, summary="Create a relay key (the raw key is in data.key, once)", request=token_create, responses=_ok(ref("Token"))),
            "put": extend_schema(
                tags=MANAGEMENT,
                summary="Edit a relay key (by id in the body); ?status_only=true changes only its status",
                request={"application/json": {"allOf": [id_body, {"type": "object"}]}},
                parameters=[OpenApiParameter("status_only", bool, required=False)],
                responses=_ok(ref("Token")),
            ),
        },
        "accounts.api.TokenSearchView": {
            "get": extend_schema(tags=MANAGEMENT, summary="Search your relay keys by name", parameters=PAGE + KEYWORD, responses=_ok(arr(ref("Token")), **listing))
        },
        "accounts.api.TokenDetailView": {
            "get": extend_schema(tags=MANAGEMENT, summary="One of your relay keys", responses=_ok(ref("Token"))),
            "delete": extend_schema(tags=MANAGEMENT, summary="Delete one of your relay keys", responses=_ok()),
        },
        "channels_app.api.ChannelCollectionView": {
            "get": extend_schema(
                tags=MANAGEMENT,
                summary="List channels (admin)",
                parameters=PAGE + [OpenApiParameter("status", int, required=False)],
                responses=_ok(arr(ref("Channel")), **listing),
            ),
            "post": extend_schema(tags=MANAGEMENT, summary="Create channels, one per key line (admin)", request=_channel_serializer(), responses=_ok({"anyOf": [ref("Channel"), arr(ref("Channel"))]})),
            "put": extend_schema(tags=MANAGEMENT, summary="Edit a channel by id in the body (admin)", request={"application/json": {"allOf": [id_body, {"type": "object"}]}}, responses=_ok(ref("Channel"))),
        },
        "channels_app.api.ChannelSearchView": {
            "get": extend_schema(tags=MANAGEMENT, summary="Search channels (admin)", parameters=PAGE + KEYWORD, responses=_ok(arr(ref("Channel")), **listing))
        },
        "channels_app.api.ChannelDetailView": {
            "get": extend_schema(tags=MANAGEMENT, summary="One channel (admin)", responses=_ok(ref("Channel"))),
            "delete": extend_schema(tags=MANAGEMENT, summary="Delete a channel (admin)", responses=_ok()),
        },
        "channels_app.api.DisabledChannelsView": {
            "delete": extend_schema(tags=MANAGEMENT, summary="Delete every disabled channel (admin)", responses=_ok(COUNT))
        },
        "channels_app.api.ChannelTestView": {
            "get": extend_schema(
                tags=MANAGEMENT,
                summary="Test a channel with a minimal request (admin)",
                parameters=[OpenApiParameter("model", str, required=False)],
                responses=_ok(None, time=NUMBER, model=string()),
            )
        },
        "billing.api.RequestCostView": {
            "get": extend_schema(
                tags=MANAGEMENT,
                summary="The cost of one request, to the key or user that made it",
                responses={200: ref("RequestCost"), **ENVELOPE_ERRORS},
            )
        },
        "relay.api.ModelListView": {"get": extend_schema(tags=RELAY, summary="The models this key may use", responses={200: ref("ModelList"), **RELAY_ERRORS})},
        "relay.api.ModelDetailView": {
            "get": extend_schema(
                tags=RELAY,
                summary="One model this key may use",
                # Model ids never hold line breaks or control characters.
                parameters=[OpenApiParameter("model", str, OpenApiParameter.PATH, pattern=r"^[^\x00-\x1f\x7f]+$")],
                responses={200: ref("Model"), **RELAY_ERRORS},
            )
        },
        "relay.responses_api.StoredResponseView": {
            "get": extend_schema(tags=RELAY, summary="A stored response", responses={200: ref("Response"), **RELAY_ERRORS}),
            "delete": extend_schema(tags=RELAY, summary="Delete a stored response", responses={200: ref("DeletedResponse"), **RELAY_ERRORS}),
        },
        "relay.responses_api.CancelResponseView": {
            "post": extend_schema(tags=RELAY, summary="Cancel a background response", request=None, responses={200: ref("Response"), **RELAY_ERRORS})
        },
        "relay.responses_api.InputItemsView": {
            "get": extend_schema(
                tags=RELAY,
                summary="The input items of a stored response",
                parameters=[
                    OpenApiParameter("order", str, enum=["asc", "desc"], required=False),
                    OpenApiParameter("after", str, required=False),
                    OpenApiParameter("limit", int, required=False),
                ],
                responses={200: ref("InputItemList"), **RELAY_ERRORS},
            )
        },
    }


def _already_described(view: type, method: str) -> bool:
    # The view's owner annotated this method with @extend_schema: that description wins.
    handler = getattr(view, method, None)
    return bool(getattr(handler, "kwargs", {}).get("schema"))


def _make_extension(dotted: str, schemas: dict[str, Any]) -> None:
    class Extension(OpenApiViewExtension):
        target_class = dotted

        def view_replacement(self) -> Any:
            view = self.target_class
            todo = {m: s for m, s in schemas.items() if not _already_described(view, m)}
            patched = type(view.__name__, (view,), {"__module__": view.__module__})
            return extend_schema_view(**todo)(patched) if todo else view

    Extension.__name__ = "Schema_" + dotted.replace(".", "_")


for _dotted, _schemas in _view_schemas().items():
    _make_extension(_dotted, _schemas)
