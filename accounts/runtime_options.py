"""Read runtime options (the `options` table) from Django views: stored value or the default.

The relay reads options from its snapshot; pages and the management API read the row directly,
so an operator's change applies at once. A stored value that no longer parses falls back to the
default (the admin validates on save; an imported legacy value may not).
"""

from __future__ import annotations

from typing import Any

from relay.models import Option
from relay.options import OPTION_SPECS, parse_option


def get_option(key: str) -> Any:
    spec = OPTION_SPECS[key]
    raw = Option.objects.filter(key=key).values_list("value", flat=True).first()
    if raw is not None:
        try:
            return parse_option(key, raw)
        except (ValueError, ArithmeticError):
            pass
    return spec.parse(spec.default)


def get_options(*keys: str) -> dict[str, Any]:
    """Several options in one query."""
    stored = dict(Option.objects.filter(key__in=keys).values_list("key", "value"))
    values: dict[str, Any] = {}
    for key in keys:
        spec = OPTION_SPECS[key]
        try:
            values[key] = parse_option(key, stored[key]) if key in stored else spec.parse(spec.default)
        except (ValueError, ArithmeticError):
            values[key] = spec.parse(spec.default)
    return values


def email_domain_allowed(email: str) -> bool:
    """EmailDomainRestrictionEnabled + EmailDomainWhitelist, as the original applies them at sign-up."""
    opts = get_options("EmailDomainRestrictionEnabled", "EmailDomainWhitelist")
    if not opts["EmailDomainRestrictionEnabled"]:
        return True
    allowed = {d for d in str(opts["EmailDomainWhitelist"]).split(",") if d}
    domain = email.rpartition("@")[2].strip().lower()
    return domain in allowed
