"""Template context for every page: the site's name, logo and footer from the options."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .runtime_options import get_options


def site(request: HttpRequest) -> dict[str, Any]:
    if request.path.startswith("/admin/"):
        return {}  # the admin has its own branding; spare it the query
    opts = get_options("SystemName", "Logo", "Footer")
    return {"site_name": opts["SystemName"] or "One API", "site_logo": opts["Logo"], "site_footer": opts["Footer"]}
