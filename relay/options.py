"""Runtime options: the original's option keys, their defaults and typed parsing.

Options live in the `options` table (editable in the admin); anything absent takes the
default below. The relay reads them from its in-memory snapshot (relay.cache).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"true", "1", "yes", "on"}:
        return True
    if lowered in {"false", "0", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _int(value: str) -> int:
    return int(value.strip())


def _decimal(value: str) -> Decimal:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise ValueError(f"expected a number, got {value!r}") from None
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _quota(value: str) -> int:
    number = _int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _text(value: str) -> str:
    return value


def _domains(value: str) -> str:
    """Comma-separated e-mail domains (`example.com, example.org`)."""
    domains = [d.strip().lower().lstrip("@") for d in value.replace("\n", ",").split(",") if d.strip()]
    for domain in domains:
        if "." not in domain or any(c.isspace() or c in "@/:" for c in domain):
            raise ValueError(f"{domain!r} is not a domain name such as example.com")
    return ",".join(domains)


def _url(value: str) -> str:
    value = value.strip()
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


@dataclass(frozen=True)
class OptionSpec:
    default: str
    parse: Callable[[str], object]
    help: str
    secret: bool = False


OPTION_SPECS: dict[str, OptionSpec] = {
    "RetryTimes": OptionSpec("2", _int, "How many other channels to try after a 429, 5xx, timeout or connection error."),
    "PreConsumedQuota": OptionSpec("500", _int, "Quota added to every request's hold, on top of its estimate."),
    "DefaultInputPrice": OptionSpec("2.5", _decimal, "USD per 1M input tokens for models with no price set."),
    "DefaultOutputPrice": OptionSpec("10", _decimal, "USD per 1M output tokens for models with no price set."),
    "LogConsumeEnabled": OptionSpec("true", _bool, "Write a consume log row for every request."),
    "AutomaticDisableChannelEnabled": OptionSpec("false", _bool, "Disable channels whose upstream rejects the key or billing."),
    "AutomaticEnableChannelEnabled": OptionSpec("false", _bool, "Re-enable auto-disabled channels that pass a test."),
    "ChannelDisableThreshold": OptionSpec("5", _decimal, "Seconds; a slower channel test counts as failed."),
    "QuotaForNewUser": OptionSpec("0", _quota, "Quota granted to newly registered users."),
    "QuotaPerUnit": OptionSpec("500000", _int, "Quota per USD (fixed at 500000, as in the original)."),
    # Accounts and the web pages (accounts.adapters, accounts.signup, /api/status).
    "QuotaForInviter": OptionSpec("0", _quota, "Quota granted to a user whose invite code a new user signed up with."),
    "QuotaForInvitee": OptionSpec("0", _quota, "Extra quota for a new user who signed up with an invite code."),
    "RegisterEnabled": OptionSpec("true", _bool, "New users may sign up (by password or OAuth)."),
    "PasswordRegisterEnabled": OptionSpec("true", _bool, "New users may sign up with a password."),
    "PasswordLoginEnabled": OptionSpec("true", _bool, "Users may log in with a password (root always may)."),
    "EmailVerificationEnabled": OptionSpec("true", _bool, "Sign-ups must verify their e-mail address."),
    "EmailDomainRestrictionEnabled": OptionSpec("false", _bool, "Only e-mail domains in EmailDomainWhitelist may sign up."),
    "EmailDomainWhitelist": OptionSpec("", _domains, "Comma-separated e-mail domains allowed to sign up."),
    "GitHubOAuthEnabled": OptionSpec("false", _bool, "Offer 'Sign in with GitHub'."),
    "GitHubClientId": OptionSpec("", _text, "GitHub OAuth app client id."),
    "GitHubClientSecret": OptionSpec("", _text, "GitHub OAuth app client secret.", secret=True),
    "OidcEnabled": OptionSpec("false", _bool, "Offer 'Sign in with OpenID Connect'."),
    "OidcClientId": OptionSpec("", _text, "OpenID Connect client id."),
    "OidcClientSecret": OptionSpec("", _text, "OpenID Connect client secret.", secret=True),
    "OidcWellKnown": OptionSpec("", _url, "The provider's issuer or .well-known/openid-configuration URL."),
    "SystemName": OptionSpec("One API", _text, "Name shown on the web pages."),
    "Logo": OptionSpec("", _url, "URL of a logo shown on the web pages."),
    "Footer": OptionSpec("", _text, "Text shown at the bottom of every page."),
    "Notice": OptionSpec("", _text, "Notice shown on the dashboard (and /api/notice)."),
    "About": OptionSpec("", _text, "Text of /api/about."),
    "HomePageContent": OptionSpec("", _text, "Text of the home page (and /api/home_page_content)."),
    "ServerAddress": OptionSpec("", _url, "Public address of this server, for links in e-mails and pages."),
    "TopUpLink": OptionSpec("", _url, "Where users buy redemption codes (shown on the top-up page)."),
    "ChatLink": OptionSpec("", _url, "An external chat page (shown in /api/status)."),
    "DisplayInCurrencyEnabled": OptionSpec("true", _bool, "Show quota in USD (always on in the web pages)."),
    "DisplayTokenStatEnabled": OptionSpec("true", _bool, "Show token counts in /api/status clients."),
}


def parse_option(key: str, raw: str) -> object:
    spec = OPTION_SPECS.get(key)
    if spec is None:
        return raw
    return spec.parse(raw)


def defaults() -> dict[str, object]:
    return {key: spec.parse(spec.default) for key, spec in OPTION_SPECS.items()}
