"""The worker's upstream clients: its keep-alive connection pool, and one aiohttp session.

Upstream calls go through relay.upstream_client's pool (httptools over asyncio: ~60 us of CPU
a call here, aiohttp ~160-210 us, httpx 1-5 ms; measured). The aiohttp session serves what that
client leaves aside: calls through RELAY_PROXY, URLs with credentials. Channel base URLs are set
by operators and may point at loopback (Ollama, vLLM), so they are not SSRF-guarded; URLs that
end users supply (images, files) are fetched apart, through the SSRF guard (relay.media,
relay.ssrf).
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from oneapi_site import conf

from .upstream_client import ConnectionPool, Timeouts

_session: aiohttp.ClientSession | None = None
_pool: ConnectionPool | None = None


def relay_timeout() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=conf.settings.RELAY_TIMEOUT or None,
        connect=conf.settings.RELAY_CONNECT_TIMEOUT,
        sock_read=conf.settings.IDLE_TIMEOUT or None,
    )


def get_session() -> aiohttp.ClientSession:
    global _session
    if _session is None or _session.closed:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        _session = aiohttp.ClientSession(
            connector=connector,
            timeout=relay_timeout(),
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
            auto_decompress=True,
            trust_env=False,
        )
    return _session


def get_pool() -> ConnectionPool:
    global _pool
    # Connections belong to the loop that opened them: a new loop (a test's asyncio.run) gets a new pool.
    if _pool is None or _pool.loop is not asyncio.get_running_loop():
        hot = conf.settings
        _pool = ConnectionPool(Timeouts(hot.RELAY_CONNECT_TIMEOUT, hot.IDLE_TIMEOUT, hot.RELAY_TIMEOUT))
    return _pool


def proxy() -> str | None:
    return conf.settings.RELAY_PROXY or None


async def close_session() -> None:
    global _session, _pool
    if _pool is not None:
        _pool.close()
        _pool = None
    if _session is not None and not _session.closed:
        await _session.close()
    _session = None
