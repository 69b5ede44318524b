"""The strict rate limit (CRITICAL_RATE_LIMIT per client IP, default 20 per 20 minutes) on the
web pages' log-in, sign-up, password reset, e-mail verification and OAuth views.

Those views are allauth's, so they are found by URL name here rather than decorated; the count
itself is the shared limiter's (`oneapi_site.ratelimit.check_critical`), which already guards
the `/api` routes of the same flows, so a client has one budget whichever door it knocks on.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from oneapi_site.ratelimit import check_critical

# allauth's URL names, and whether a GET counts too: confirming an e-mail, opening a reset
# link or starting an OAuth flow all happen on GET.
GUARDED: dict[str, bool] = {
    "account_login": False,
    "account_signup": False,
    "account_reset_password": False,
    "account_reset_password_from_key": True,
    "account_confirm_email": True,
    "github_login": True,
    "github_callback": True,
    "openid_connect_login": True,
    "openid_connect_callback": True,
}


def is_guarded(request: HttpRequest) -> bool:
    match = request.resolver_match
    name = match.url_name if match else None
    if name not in GUARDED:
        return False
    return request.method == "POST" or (GUARDED[name] and request.method == "GET")


class CriticalRateLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: object, args: object, kwargs: object) -> HttpResponse | None:
        if settings.RATE_LIMIT_DISABLED or not is_guarded(request):
            return None
        return check_critical(request)
