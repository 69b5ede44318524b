"""Images and files the caller gives as http(s) URLs, fetched and inlined for upstreams that
cannot fetch them (Gemini, Vertex, Bedrock: adaptors with `needs_inline_media`).

Every fetch goes through the SSRF guard (relay.ssrf), follows at most MAX_REDIRECTS redirects
itself (each hop checked again), gives up after USER_CONTENT_REQUEST_TIMEOUT seconds, stops
reading past MAX_INLINE_IMAGE_SIZE_MB (and past RELAY_MAX_BODY_MB for all of one request: the
gateway would refuse a body that large from the caller too), and takes only images (PDFs for
file parts) by the response's Content-Type, or by their first bytes when the server says
nothing better than application/octet-stream. Any failure is the caller's 400, naming the URL.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
import yarl
from django.conf import settings

from . import ir
from .errors import InvalidRequest
from .ssrf import BlockedURL, GuardedResolver, check_url

CONCURRENCY = 4
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/binary"})
_USER_AGENT = "OneAPI-Django/1 (media fetch for an upstream that needs it inline)"
_MAGIC: tuple[tuple[bytes, int, str], ...] = (  # (signature, offset, media type)
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"%PDF-", 0, "application/pdf"),
)

Media = ir.ImagePart | ir.FilePart
Key = tuple[str, str]  # (url, "image" | "file")


class FetchFailed(Exception):
    pass


def _is_remote(url: str | None) -> bool:
    return url is not None and url[:8].lower().startswith(("http://", "https://"))


def _kind(part: Media) -> str:
    return "image" if isinstance(part, ir.ImagePart) else "file"


def _remote_parts(request: ir.Request, keep: Callable[[str], bool]) -> set[Key]:
    wanted: set[Key] = set()
    for message in request.messages:
        for part in message.parts:
            inner = part.content if isinstance(part, ir.ToolResultPart) else [part]
            for item in inner:
                if isinstance(item, Media) and not item.data and _is_remote(item.url) and not keep(item.url or ""):
                    wanted.add((item.url or "", _kind(item)))
    return wanted


async def inline_remote_media(request: ir.Request, *, keep: Callable[[str], bool] | None = None) -> None:
    """Replace every http(s) URL of an image or file in `request.messages` (tool results
    included) by its inline base64 `data` and `media_type`. Copy on write: changed messages and
    parts are new objects, so a shallow copy's original keeps its URLs. `keep(url)`: URLs the
    upstream reads itself, left as they are. Raises InvalidRequest (the caller's 400)."""
    wanted = _remote_parts(request, keep or (lambda _url: False))
    if not wanted:
        return
    fetched = await _fetch_all(wanted)

    def replace(item: Any) -> Any:
        if isinstance(item, Media) and (item.url or "", _kind(item)) in fetched:
            data, media_type = fetched[(item.url or "", _kind(item))]
            return dataclasses.replace(item, url=None, data=data, media_type=media_type)
        if isinstance(item, ir.ToolResultPart):
            content = [replace(c) for c in item.content]
            if any(new is not old for new, old in zip(content, item.content, strict=True)):
                return dataclasses.replace(item, content=content)
        return item

    messages = []
    for message in request.messages:
        parts = [replace(p) for p in message.parts]
        changed = any(new is not old for new, old in zip(parts, message.parts, strict=True))
        messages.append(dataclasses.replace(message, parts=parts) if changed else message)
    request.messages = messages


async def _fetch_all(wanted: set[Key]) -> dict[Key, tuple[str, str]]:
    timeout = float(settings.USER_CONTENT_REQUEST_TIMEOUT)
    proxy = settings.USER_CONTENT_REQUEST_PROXY or None
    exempt = frozenset({yarl.URL(proxy).raw_host or ""}) if proxy else frozenset()
    budget = _Budget(settings.RELAY_MAX_BODY_MB)
    gate = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(exempt), use_dns_cache=False, limit=CONCURRENCY)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        auto_decompress=False,  # no decompression bombs: the size cap counts the bytes received
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    )

    async def one(key: Key) -> tuple[Key, tuple[str, str]]:
        url, kind = key
        async with gate:
            try:
                async with asyncio.timeout(timeout):
                    raw, media_type = await _fetch(session, url, kind, proxy, budget)
            except BlockedURL as exc:
                raise _invalid(url, kind, f"refused: {exc}") from None
            except FetchFailed as exc:
                raise _invalid(url, kind, str(exc)) from None
            except TimeoutError:
                raise _invalid(url, kind, f"no answer within {timeout:g} s") from None
            except aiohttp.InvalidURL:
                raise _invalid(url, kind, "the URL is malformed") from None
            except aiohttp.ClientError as exc:
                raise _invalid(url, kind, f"the download failed ({exc.__class__.__name__})") from None
        return key, (base64.b64encode(raw).decode("ascii"), media_type)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(key)) for key in sorted(wanted)]
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    finally:
        await session.close()
    return dict(task.result() for task in tasks)


def _invalid(url: str, kind: str, reason: str) -> InvalidRequest:
    return InvalidRequest(f"could not fetch the {kind} URL {_shown(url)}: {reason}", param="messages", code=f"invalid_{kind}_url")


def _shown(url: str) -> str:
    """The URL for messages (which the consume log keeps too): without credentials or the query
    string (signed URLs carry their signature there), and not too long."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url[:200]
    netloc = parts.netloc.rpartition("@")[2]
    shown = urlunsplit((parts.scheme, netloc, parts.path, "", "")) + ("?..." if parts.query else "")
    return shown if len(shown) <= 200 else shown[:200] + "..."


class _Budget:
    """Bytes all fetches of one request may still read."""

    def __init__(self, megabytes: float) -> None:
        self.megabytes = megabytes
        self.left = int(megabytes * 1024 * 1024)

    def take(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise FetchFailed(f"the request's media add up to more than {self.megabytes:g} MB (RELAY_MAX_BODY_MB)")


async def _fetch(session: aiohttp.ClientSession, url: str, kind: str, proxy: str | None, budget: _Budget) -> tuple[bytes, str]:
    too_large = f"it is larger than {settings.MAX_INLINE_IMAGE_SIZE_MB:g} MB (MAX_INLINE_IMAGE_SIZE_MB)"
    limit = int(settings.MAX_INLINE_IMAGE_SIZE_MB * 1024 * 1024)
    accept = "image/*" if kind == "image" else "application/pdf"
    target = url
    for _hop in range(MAX_REDIRECTS + 1):
        checked = await check_url(target, proxied=proxy is not None)
        headers = {"User-Agent": _USER_AGENT, "Accept": accept, "Accept-Encoding": "identity"}
        async with session.get(checked, headers=headers, proxy=proxy, allow_redirects=False) as response:
            if response.status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise FetchFailed(f"answered {response.status} without a Location")
                target = urljoin(str(checked), location)
                continue
            if response.status != 200:
                raise FetchFailed(f"answered HTTP {response.status}")
            encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise FetchFailed(f"the server sent it {encoding}-encoded")
            declared = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if declared not in _GENERIC_TYPES and not _acceptable(declared, kind):
                raise FetchFailed(f"the content type is {declared}, not {_wanted(kind)}")
            if response.content_length is not None and response.content_length > limit:
                raise FetchFailed(too_large)
            raw = await _read_capped(response, limit, too_large, budget)
            media_type = declared if declared not in _GENERIC_TYPES else _sniff(raw)
            if media_type is None or not _acceptable(media_type, kind):
                raise FetchFailed(f"the content is not {_wanted(kind)}")
            return raw, media_type
    raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")


async def _read_capped(response: aiohttp.ClientResponse, limit: int, too_large: str, budget: _Budget) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise FetchFailed(too_large)
        budget.take(len(chunk))
        chunks.append(chunk)
    return b"".join(chunks)


def _acceptable(media_type: str, kind: str) -> bool:
    return media_type.startswith("image/") if kind == "image" else media_type == "application/pdf"


def _wanted(kind: str) -> str:
    return "an image" if kind == "image" else "a PDF"


def _sniff(raw: bytes) -> str | None:
    for signature, offset, media_type in _MAGIC:
        if raw[offset : offset + len(signature)] == signature:
            if media_type == "image/webp" and not raw.startswith(b"RIFF"):
                continue
            return media_type
    return None
