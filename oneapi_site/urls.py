"""URL map: admin, the management API (`/api`) and the `/v1` routes that Django serves.

Each `/api` and `/v1` tree ends in a catch-all, so an unknown path under them answers JSON
(and Django's APPEND_SLASH never redirects an API client).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path

from relay.api import unknown_relay_route

from . import discovery, health
from .api_envelope import unknown_api_route
from .metrics import metrics_view

api_urlpatterns = [
    path("", include("accounts.urls")),
    path("", include("channels_app.urls")),
    path("", include("billing.urls")),
    re_path(r"^[\s\S]*$", unknown_api_route),  # not ".": a path with a newline is unknown too, never an HTML 404
]

urlpatterns = [
    # Operations: probes and Prometheus (oneapi_site.health, oneapi_site.metrics).
    path("healthz", health.healthz),
    path("livez", health.livez),
    path("metrics", metrics_view),
    path("admin/", admin.site.urls),
    path("api/", include(api_urlpatterns)),
    re_path(r"^api$", unknown_api_route),
    path("v1/", include("relay.urls")),
    re_path(r"^v1$", unknown_relay_route),
    # Public discovery, the sandbox and the MCP gateway (`/mcp`); none is under /v1 or /api.
    path("", include(discovery.urlpatterns)),
    # End-user web pages (sign-up and log-in through allauth under /accounts/).
    path("", include("billing.page_urls")),
    path("", include("accounts.page_urls")),
]
