"""ASGI entry point.

The hot relay endpoints go to relay's lean async app (no Django request cycle, no ORM, no
thread hop per request); everything else (admin, /api, pages, /v1/models) goes to Django.
Django is initialised first so that the relay can import models and settings.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oneapi_site.settings")
django_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from relay.app import relay_app  # noqa: E402
from relay.routes import is_relay_route  # noqa: E402


async def http_router(scope, receive, send):  # type: ignore[no-untyped-def]
    if is_relay_route(scope["method"], scope["path"]):
        await relay_app(scope, receive, send)
    else:
        await django_app(scope, receive, send)


application = ProtocolTypeRouter({"http": http_router, "lifespan": relay_app.lifespan})
