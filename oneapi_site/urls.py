"""URL map: admin, the management API (`/api`) and the `/v1` routes that Django serves.

Each `/api` and `/v1` tree ends in a catch-all, so an unknown path under them answers JSON
(and Django's APPEND_SLASH never redirects an API client).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path

from relay.api import unknown_relay_route

from .api_envelope import unknown_api_route

api_urlpatterns = [
    path("", include("accounts.urls")),
    path("", include("channels_app.urls")),
    path("", include("billing.urls")),
    re_path(r"^.*$", unknown_api_route),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api_urlpatterns)),
    re_path(r"^api$", unknown_api_route),
    path("v1/", include("relay.urls")),
    re_path(r"^v1$", unknown_relay_route),
]
