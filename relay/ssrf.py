"""The SSRF guard for URLs that end users supply (images and files the relay fetches for them).

Channel base URLs are the operator's and are not guarded (relay.http). A caller's URL may point
anywhere, the gateway's own network and the cloud metadata service included, so:
- only http and https, without control characters or backslashes (URL parsers disagree on them);
- every address the host resolves to must be public: loopback, private, link-local (with the
  metadata address 169.254.169.254), carrier-grade NAT, multicast, reserved and unspecified
  addresses are refused, also inside IPv6 (IPv4-mapped, NAT64, 6to4, Teredo). A name is refused
  as a whole when any of its addresses is, never filtered;
- the address checked is the address connected to: the check runs in the connector's resolver
  (`GuardedResolver`, one resolution per connection, no DNS cache), so a name that resolves
  elsewhere between check and connect (DNS rebinding) cannot slip through. aiohttp does not ask
  the resolver about literal IPs; `check_url` checks those before each request (and each redirect);
- operators may allow networks (USER_CONTENT_ALLOWED_NETWORKS, CIDRs) or host names
  (USER_CONTENT_ALLOWED_HOSTS; ".example.com" allows its subdomains too).
Through USER_CONTENT_REQUEST_PROXY the proxy resolves the name again: `check_url` checks the
target's addresses first, but the pin is then the proxy's job.

Anchors: paperless-ngx src/paperless/network.py (pinned transport), healthchecks hc/lib/curl.py.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from functools import lru_cache
from typing import Any

import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Checked in order: the first match names the reason (the metadata address before link-local).
_REFUSED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), reason)
    for cidr, reason in (
        ("169.254.169.254/32", "the cloud metadata address"),
        ("fd00:ec2::254/128", "the cloud metadata address"),  # AWS's IPv6 IMDS
        ("0.0.0.0/8", "an unspecified address"),
        ("127.0.0.0/8", "a loopback address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("169.254.0.0/16", "a link-local address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("fc00::/7", "a private address"),
        ("fec0::/10", "a private address"),  # deprecated site-local
        ("fe80::/10", "a link-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: 64:ff9b::7f00:1 reaches 127.0.0.1
_UNSAFE_CHARS = re.compile(r"[\\\x00-\x20\x7f]")
SCHEMES = frozenset({"http", "https"})


class BlockedURL(Exception):
    """A URL the guard refuses; the message says why (without the addresses a name resolved to)."""


# Resolver indirection, so tests can fake DNS for the guard alone.
async def _getaddrinfo(host: str, port: int, family: int) -> list[tuple[Any, ...]]:
    return await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in spec)


def allowed_networks() -> tuple[IPNetwork, ...]:
    return _networks(tuple(settings.USER_CONTENT_ALLOWED_NETWORKS))


def host_allowed(host: str) -> bool:
    """The operator allows `host` by name (USER_CONTENT_ALLOWED_HOSTS)."""
    name = host.rstrip(".").lower()
    for entry in settings.USER_CONTENT_ALLOWED_HOSTS:
        entry = entry.rstrip(".").lower()
        if entry.startswith("."):
            if name == entry[1:] or name.endswith(entry):
                return True
        elif name == entry:
            return True
    return False


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches: mapped (::ffff:a.b.c.d), NAT64, 6to4, Teredo."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def refusal(ip: IPAddress) -> str | None:
    """Why the guard refuses `ip` ("a loopback address", ...), or None when it may be fetched."""
    inner = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    allowed = allowed_networks()
    if any(ip in net or (inner is not None and inner in net) for net in allowed):
        return None
    if inner is not None:
        why = refusal(inner)
        if why is not None:
            return f"{why} wrapped in IPv6"
        if ip.ipv4_mapped is not None:
            return None  # ::ffff:8.8.8.8 is 8.8.8.8
    for net, reason in _REFUSED:
        if ip in net:
            return reason
    if not ip.is_global:
        return "a non-public address"  # documentation, benchmarking, protocol-assignment ranges
    return None


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


async def resolve_checked(host: str, port: int, family: int = socket.AF_UNSPEC) -> list[tuple[Any, ...]]:
    """getaddrinfo results for `host`, once; BlockedURL when any address is refused."""
    try:
        infos = await _getaddrinfo(host, port, family)
    except (OSError, UnicodeError):
        raise BlockedURL(f"the host {host} could not be resolved") from None
    if not infos:
        raise BlockedURL(f"the host {host} could not be resolved")
    if not host_allowed(host):
        for info in infos:
            why = refusal(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
            if why is not None:
                raise BlockedURL(f"the host {host} resolves to {why}")
    return infos


async def check_url(url: str | yarl.URL, *, proxied: bool = False) -> yarl.URL:
    """The parsed URL when it may be fetched, else BlockedURL. Host names are checked here only
    when `proxied` (otherwise `GuardedResolver` checks them when connecting)."""
    text = str(url)
    if _UNSAFE_CHARS.search(text):
        raise BlockedURL("the URL contains spaces, control characters or backslashes")
    try:
        parsed = yarl.URL(text)
    except (ValueError, TypeError):
        raise BlockedURL("the URL is malformed") from None
    if parsed.scheme.lower() not in SCHEMES:
        raise BlockedURL(f"only http and https URLs can be fetched, not {parsed.scheme or 'a relative URL'}")
    host = parsed.raw_host
    if not host:
        raise BlockedURL("the URL has no host")
    try:
        port = parsed.port or (443 if parsed.scheme.lower() == "https" else 80)
    except ValueError:
        raise BlockedURL("the URL has an invalid port") from None
    literal = ip_literal(host)
    if literal is not None:
        why = None if host_allowed(host) else refusal(literal)
        if why is not None:
            raise BlockedURL(f"{literal} is {why}")
    elif proxied and not host_allowed(host):
        await resolve_checked(host, port)
    return parsed


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses names resolving to guarded addresses; what it returns is
    what the connector connects to (with SNI and certificate checks against the name).
    `exempt`: names it does not check (the operator's proxy)."""

    def __init__(self, exempt: frozenset[str] = frozenset()) -> None:
        self._exempt = frozenset(h.lower() for h in exempt)

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if host.lower() in self._exempt:
            infos = await _getaddrinfo(host, port, family)
        else:
            infos = await resolve_checked(host, port, family)
        results: list[ResolveResult] = []
        for fam, _, proto, _, address in infos:
            if fam == socket.AF_INET6 and len(address) < 3:
                continue  # an IPv6 address this Python cannot use
            results.append(
                ResolveResult(hostname=host, host=str(address[0]), port=int(address[1]), family=fam, proto=proto,
                              flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
            )
        if not results:
            raise OSError(f"no usable address for {host}")
        return results

    async def close(self) -> None:
        return None
