"""The SSRF guard (relay.ssrf) and the media fetcher behind it (relay.media), against real
HTTP servers on loopback; DNS is faked for names that must resolve to other ranges."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from django.core.exceptions import ImproperlyConfigured

from fakeprovider.server import TINY_PNG
from relay import ir, ssrf
from relay.errors import InvalidRequest
from relay.media import inline_remote_media

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"

# Names the fake DNS knows; anything else goes to the real resolver.
FAKE_DNS: dict[str, list[str]] = {
    "metadata.test": ["169.254.169.254"],
    "private.test": ["10.1.2.3"],
    "private172.test": ["172.20.0.1"],
    "home.test": ["192.168.1.10"],
    "cgnat.test": ["100.64.0.7"],
    "linklocal.test": ["169.254.10.10"],
    "zero.test": ["0.0.0.0"],
    "multicast.test": ["224.0.0.251"],
    "reserved.test": ["240.0.0.1"],
    "ula.test": ["fd12:3456::1"],
    "v6loop.test": ["::1"],
    "v6linklocal.test": ["fe80::1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "nat64.test": ["64:ff9b::a9fe:a9fe"],
    "mixed.test": ["93.184.216.34", "192.168.0.5"],
    "public.test": ["93.184.216.34"],
    "img.test": ["127.0.0.1"],  # a loopback server, reachable only when the operator allows it
}


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Resolves FAKE_DNS names; returns the list of names looked up (in order)."""
    lookups: list[str] = []
    real = ssrf._getaddrinfo

    async def getaddrinfo(host: str, port: int, family: int) -> list[tuple[Any, ...]]:
        lookups.append(host)
        if host not in FAKE_DNS:
            return await real(host, port, family)
        out: list[tuple[Any, ...]] = []
        for address in FAKE_DNS[host]:
            if ":" in address:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return out

    monkeypatch.setattr(ssrf, "_getaddrinfo", getaddrinfo)
    return lookups


@pytest.fixture(autouse=True)
def defaults(settings: Any) -> None:
    settings.USER_CONTENT_ALLOWED_NETWORKS = []
    settings.USER_CONTENT_ALLOWED_HOSTS = []
    settings.USER_CONTENT_REQUEST_PROXY = ""
    settings.USER_CONTENT_REQUEST_TIMEOUT = 5
    settings.MAX_INLINE_IMAGE_SIZE_MB = 16
    settings.RELAY_MAX_BODY_MB = 32


def image_request(*urls: str) -> ir.Request:
    return ir.Request(model="m", messages=[ir.Message(role="user", parts=[ir.ImagePart(url=u) for u in urls])])


def inline(request: ir.Request, **kwargs: Any) -> ir.Request:
    asyncio.run(inline_remote_media(request, **kwargs))
    return request


def refused(url: str) -> str:
    with pytest.raises(InvalidRequest) as caught:
        inline(image_request(url))
    error = caught.value
    assert error.status == 400 and error.code == "invalid_image_url" and error.param == "messages"
    assert url in error.message
    return error.message


# ------------------------------------------------------------------------------- a local server


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def with_server(routes: dict[str, Handler], test: Callable[[str], Awaitable[Any]]) -> Any:
    """Run `test(base_url)` while an aiohttp server on 127.0.0.1 serves `routes`."""

    async def main() -> Any:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            return await test(f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()

    return asyncio.run(main())


async def png(request: web.Request) -> web.Response:
    return web.Response(body=TINY_PNG, content_type="image/png")


def fetch_error(request: ir.Request) -> Callable[[str], Awaitable[str]]:
    async def run(base: str) -> str:
        try:
            await inline_remote_media(request)
        except InvalidRequest as exc:
            return exc.message
        raise AssertionError("the fetch was not refused")

    return run


# ----------------------------------------------------------------------------- address ranges


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "non-public"),  # documentation range
        ("198.18.0.1", "non-public"),  # benchmarking range
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:127.0.0.1", "loopback address wrapped in IPv6"),
        ("::ffff:10.0.0.1", "private address wrapped in IPv6"),
        ("::ffff:169.254.169.254", "metadata address wrapped in IPv6"),
        ("64:ff9b::7f00:1", "loopback address wrapped in IPv6"),  # NAT64
        ("2002:a9fe:a9fe::1", "metadata address wrapped in IPv6"),  # 6to4
    ],
)
def test_refused_addresses(address: str, reason: str) -> None:
    import ipaddress

    why = ssrf.refusal(ipaddress.ip_address(address))
    assert why is not None and reason in why


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    import ipaddress

    assert ssrf.refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1/a.png", "127.0.0.1 is a loopback address"),
        ("https://127.0.0.1:8443/a.png", "loopback"),
        ("http://10.0.0.5/a.png", "private"),
        ("http://172.16.3.4/a.png", "private"),
        ("http://192.168.0.1/a.png", "private"),
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata address"),
        ("http://100.64.0.1/a.png", "carrier-grade NAT"),
        ("http://0.0.0.0/a.png", "unspecified"),
        ("http://[::1]/a.png", "loopback"),
        ("http://[::]/a.png", "unspecified"),
        ("http://[fd00::1]/a.png", "private"),
        ("http://[fe80::1%25eth0]/a.png", "link-local"),
        ("http://[::ffff:127.0.0.1]/a.png", "loopback address wrapped in IPv6"),
        ("http://[::ffff:a9fe:a9fe]/a.png", "metadata address wrapped in IPv6"),
        ("http://0x7f.1/a.png", "loopback"),  # a legacy numeric form, resolved by the system
        ("http://127.1/a.png", "malformed"),  # aiohttp refuses non-canonical IPv4 literals
        ("http://2130706433/a.png", "malformed"),
    ],
)
def test_literal_addresses_refused(url: str, reason: str) -> None:
    assert reason in refused(url)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("file:///etc/passwd", None),  # not fetched at all: no http(s) URL
        ("http://local\\host/a.png", "backslashes"),
        ("http://exa mple.com/a.png", "spaces"),
    ],
)
def test_odd_urls(url: str, reason: str | None) -> None:
    if reason is None:
        request = inline(image_request(url))
        assert request.messages[0].parts[0] == ir.ImagePart(url=url)  # left to the encoder
    else:
        assert reason in refused(url)


@pytest.mark.parametrize("scheme", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://127.0.0.1:6379/_x"])
def test_other_schemes_refused_by_the_guard(scheme: str) -> None:
    with pytest.raises(ssrf.BlockedURL, match="only http and https"):
        asyncio.run(ssrf.check_url(scheme))


def test_localhost_by_name_is_refused() -> None:
    assert "the host localhost resolves to a loopback address" in refused("http://localhost:9/a.png")


@pytest.mark.parametrize(
    "host, reason",
    [
        ("metadata.test", "the cloud metadata address"),
        ("private.test", "a private address"),
        ("private172.test", "a private address"),
        ("home.test", "a private address"),
        ("cgnat.test", "carrier-grade NAT"),
        ("linklocal.test", "link-local"),
        ("zero.test", "unspecified"),
        ("multicast.test", "multicast"),
        ("reserved.test", "reserved"),
        ("ula.test", "a private address"),
        ("v6loop.test", "loopback"),
        ("v6linklocal.test", "link-local"),
        ("mapped.test", "loopback address wrapped in IPv6"),
        ("nat64.test", "metadata address wrapped in IPv6"),
        ("mixed.test", "a private address"),  # one bad address refuses the name
    ],
)
def test_names_resolving_to_refused_addresses(fake_dns: list[str], host: str, reason: str) -> None:
    message = refused(f"http://{host}/a.png")
    assert f"the host {host} resolves to {reason}" in message or reason in message
    assert "192.168.0.5" not in message and "10.1.2.3" not in message  # resolved addresses stay private


def test_unresolvable_name() -> None:
    assert "could not be resolved" in refused("http://does-not-exist.invalid/a.png")


# ------------------------------------------------------------------------------- fetching


def test_loopback_refused_by_default_even_with_a_live_server() -> None:
    message = with_server({"/a.png": png}, lambda base: fetch_error(image_request(base + "/a.png"))(base))
    assert "loopback" in message


def test_allowed_networks_let_loopback_through(settings: Any) -> None:
    settings.USER_CONTENT_ALLOWED_NETWORKS = ["127.0.0.0/8"]

    async def run(base: str) -> ir.Request:
        request = image_request(base + "/a.png")
        await inline_remote_media(request)
        return request

    request = with_server({"/a.png": png}, run)
    part = request.messages[0].parts[0]
    assert isinstance(part, ir.ImagePart)
    assert part.url is None and part.media_type == "image/png" and base64.b64decode(part.data or "") == TINY_PNG


def test_names_are_resolved_once_and_pinned(settings: Any, fake_dns: list[str]) -> None:
    """The resolver that checks is the one the connection uses: one lookup per connection."""
    settings.USER_CONTENT_ALLOWED_NETWORKS = ["127.0.0.1/32"]

    async def run(base: str) -> ir.Request:
        request = image_request(base.replace("127.0.0.1", "img.test") + "/a.png")
        await inline_remote_media(request)
        return request

    request = with_server({"/a.png": png}, run)
    assert isinstance(request.messages[0].parts[0], ir.ImagePart) and request.messages[0].parts[0].data
    assert fake_dns == ["img.test"]


def test_allowed_hosts(settings: Any, fake_dns: list[str]) -> None:
    settings.USER_CONTENT_ALLOWED_HOSTS = [".test"]

    async def run(base: str) -> ir.Request:
        request = image_request(base.replace("127.0.0.1", "img.test") + "/a.png")
        await inline_remote_media(request)
        return request

    assert with_server({"/a.png": png}, run).messages[0].parts[0].data  # type: ignore[union-attr]
    assert ssrf.host_allowed("img.test") and ssrf.host_allowed("IMG.test.") and not ssrf.host_allowed("test.example")


def redirect_to(target: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        location = target.replace("{port}", str(request.url.port))
        raise web.HTTPFound(location)

    return handler


@pytest.mark.parametrize(
    "target, reason",
    [
        ("http://127.0.0.1:{port}/a.png", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata address"),
        ("http://private.test/a.png", "the host private.test resolves to a private address"),
        ("http://[::1]:{port}/a.png", "loopback"),
        ("file:///etc/passwd", "only http and https"),
    ],
)
def test_redirects_into_refused_addresses(settings: Any, fake_dns: list[str], target: str, reason: str) -> None:
    settings.USER_CONTENT_ALLOWED_HOSTS = ["img.test"]  # the first hop only

    async def run(base: str) -> str:
        return await fetch_error(image_request(base.replace("127.0.0.1", "img.test") + "/go"))(base)

    message = with_server({"/go": redirect_to(target), "/a.png": png}, run)
    assert reason in message and "img.test" in message


def test_redirects_followed_up_to_three(settings: Any) -> None:
    settings.USER_CONTENT_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    routes = {"/r1": redirect_to("/r2"), "/r2": redirect_to("r3"), "/r3": redirect_to("/a.png"), "/a.png": png}

    async def run(base: str) -> tuple[ir.Request, str]:
        request = image_request(base + "/r1")
        await inline_remote_media(request)
        too_many = await fetch_error(image_request(base + "/r0"))(base)
        return request, too_many

    routes["/r0"] = redirect_to("/r1")
    request, too_many = with_server(routes, run)
    assert request.messages[0].parts[0].data  # type: ignore[union-attr]
    assert "more than 3 redirects" in too_many


@pytest.mark.parametrize("chunked", [False, True])
def test_size_cap(settings: Any, chunked: bool) -> None:
    settings.USER_CONTENT_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.MAX_INLINE_IMAGE_SIZE_MB = 0.01  # 10485 bytes
    big = TINY_PNG + b"\0" * 200_000

    async def large(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=big, content_type="image/png")
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(big), 4096):
            await response.write(big[start : start + 4096])
        return response

    message = with_server({"/big.png": large}, lambda base: fetch_error(image_request(base + "/big.png"))(base))
    assert "larger than 0.01 MB" in message


def test_total_of_one_request_is_capped(settings: Any) -> None:
    settings.USER_CONTENT_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.RELAY_MAX_BODY_MB = 0.0002  # 209 bytes: four tiny PNGs (70 bytes each) are too many
    urls = lambda base: image_request(*(f"{base}/a.png?{i}" for i in range(4)))  # noqa: E731
    message = with_server({"/a.png": png}, lambda base: fetch_error(urls(base))(base))
    assert "add up to more than" in message


def test_timeout(settings: Any) -> None:
    settings.USER_CONTENT_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.USER_CONTENT_REQUEST_TIMEOUT = 0.3

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return await png(request)

    message = with_server({"/slow.png": slow}, lambda base: fetch_error(image_request(base + "/slow.png"))(base))
    assert "no answer within 0.3 s" in message


@pytest.mark.parametrize(
    "content_type, body, ok",
    [
        ("text/html", b"<html>not an image</html>", False),
        ("application/json", b"{}", False),
        ("application/octet-stream", TINY_PNG, True),  # sniffed: a PNG
        ("application/octet-stream", b"<html>", False),
        ("image/jpeg; charset=binary", b"\xff\xd8\xff\xe0rest", True),
    ],
)
def test_content_type(settings: Any, content_type: str, body: bytes, ok: bool) -> None:
    settings.USER_CONTENT_ALLOWED_NETWORKS = ["127.0.0.0/8"]

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def run(base: str) -> ir.Request | str:
        request = image_request(base + "/x")
        try:
            await inline_remote_media(request)
        except InvalidRequest as exc:
            return exc.message
        return request

    result = with_server({"/x": serve}, run)
    if ok:
        assert isinstance(result, ir.Request)
        assert result.messages[0].parts[0].media_type in ("image/png", "image/jpeg")  # type: ignore[union-attr]
    else:
        assert isinstance(result, str) and "not an image" in result


def test_http_errors_name_the_status(settings: Any) -> None:
    settings.USER_CONTENT_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    message = with_server({}, lambda base: fetch_error(image_request(base + "/missing.png"))(base))
    assert "answered HTTP 404" in message


def test_files_tool_results_copy_on_write_and_dedup(settings: Any) -> None:
    settings.USER_CONTENT_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    hits: list[str] = []

    async def counted(request: web.Request) -> web.Response:
        hits.append(request.path)
        return await png(request)

    async def pdf(request: web.Request) -> web.Response:
        return web.Response(body=PDF, content_type="application/pdf")

    async def run(base: str) -> tuple[ir.Request, ir.Request, str]:
        original = ir.Request(
            model="m",
            messages=[
                ir.Message(role="user", parts=[ir.TextPart("look"), ir.ImagePart(url=base + "/a.png", detail="low")]),
                ir.Message(role="tool", parts=[ir.ToolResultPart(call_id="c1", content=[ir.ImagePart(url=base + "/a.png")])]),
                ir.Message(role="user", parts=[ir.FilePart(url=base + "/doc.pdf", filename="doc.pdf")]),
                ir.Message(role="user", parts=[ir.ImagePart(url="https://keep.example/x.png"), ir.ImagePart(url="data:image/png;base64,AA==")]),
            ],
        )
        upstream = dataclasses.replace(original)
        await inline_remote_media(upstream, keep=lambda url: url.startswith("https://keep.example/"))
        assert hits == ["/a.png"]  # the same URL is fetched once
        not_pdf = await fetch_error(ir.Request(model="m", messages=[ir.Message(role="user", parts=[ir.FilePart(url=base + "/a.png")])]))(base)
        return original, upstream, not_pdf

    original, upstream, not_pdf = with_server({"/a.png": counted, "/doc.pdf": pdf}, run)
    image = upstream.messages[0].parts[1]
    assert isinstance(image, ir.ImagePart) and image.url is None and image.detail == "low"
    assert base64.b64decode(image.data or "") == TINY_PNG
    result = upstream.messages[1].parts[0]
    assert isinstance(result, ir.ToolResultPart) and result.content[0].data == image.data  # type: ignore[union-attr]
    document = upstream.messages[2].parts[0]
    assert isinstance(document, ir.FilePart) and document.media_type == "application/pdf" and document.filename == "doc.pdf"
    assert base64.b64decode(document.data or "") == PDF
    assert upstream.messages[3] is original.messages[3]  # unchanged: kept URL and a data URL
    # The caller's request (shared lists before the call) still has its URLs.
    assert isinstance(original.messages[0].parts[1], ir.ImagePart) and original.messages[0].parts[1].url
    assert original.messages[1].parts[0].content[0].url  # type: ignore[union-attr]
    assert "not a PDF" in not_pdf and "file URL" in not_pdf


def test_proxy_is_used_and_exempt(settings: Any, fake_dns: list[str]) -> None:
    """Through USER_CONTENT_REQUEST_PROXY (on loopback: the operator's, not checked) the target
    is still checked before the request; a public target goes to the proxy."""
    seen: list[str] = []

    async def proxy_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n", 1)[0].decode())
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(TINY_PNG))
        writer.write(TINY_PNG)
        await writer.drain()
        writer.close()

    async def run() -> tuple[ir.Request, str]:
        server = await asyncio.start_server(proxy_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings.USER_CONTENT_REQUEST_PROXY = f"http://127.0.0.1:{port}"
        try:
            request = image_request("http://public.test/a.png")
            await inline_remote_media(request)
            blocked = await fetch_error(image_request("http://private.test/a.png"))("")
        finally:
            server.close()
        return request, blocked

    request, blocked = asyncio.run(run())
    assert seen == ["GET http://public.test/a.png HTTP/1.1"]
    assert base64.b64decode(request.messages[0].parts[0].data or "") == TINY_PNG  # type: ignore[union-attr]
    assert "private.test resolves to a private address" in blocked


def test_allowed_networks_setting_is_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    from oneapi_site.env import env_networks

    monkeypatch.setenv("USER_CONTENT_ALLOWED_NETWORKS", "127.0.0.0/8, fd00::/8,10.0.0.1")
    assert env_networks("USER_CONTENT_ALLOWED_NETWORKS") == ["127.0.0.0/8", "fd00::/8", "10.0.0.1"]
    monkeypatch.setenv("USER_CONTENT_ALLOWED_NETWORKS", "127.0.0.0/8,localhost")
    with pytest.raises(ImproperlyConfigured, match="USER_CONTENT_ALLOWED_NETWORKS"):
        env_networks("USER_CONTENT_ALLOWED_NETWORKS")


def test_adaptors_that_need_inline_media() -> None:
    from relay.adaptors import ADAPTORS, get_adaptor

    needs = {name for name in ADAPTORS if get_adaptor(name).needs_inline_media}
    assert needs == {"gemini", "vertex", "bedrock"}
    gemini = get_adaptor("gemini")
    assert gemini.reads_media_url("https://generativelanguage.googleapis.com/v1beta/files/abc123")
    assert gemini.reads_media_url("https://www.youtube.com/watch?v=9hE5-98ZeCg")
    assert not gemini.reads_media_url("https://example.com/files/a.png")


def test_messages_leave_out_credentials_and_query() -> None:
    with pytest.raises(InvalidRequest) as caught:
        inline(image_request("http://user:secret@127.0.0.1/a.png?X-Amz-Signature=abc"))
    assert "http://127.0.0.1/a.png?..." in caught.value.message
    assert "secret" not in caught.value.message and "abc" not in caught.value.message
    with pytest.raises(InvalidRequest, match="malformed"):
        inline(image_request("http://[::1/a.png"))
