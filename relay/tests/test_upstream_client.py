"""relay.upstream_client against a real loopback server that answers with scripted bytes."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
import yarl

from relay import upstream_client
from relay.upstream_client import ConnectionPool, Timeouts, target

from .helpers import cyclic_garbage

Answer = Callable[[asyncio.StreamWriter, int], Awaitable[None]]
TIMEOUTS = Timeouts(connect=5, read=5, total=0)


class ScriptedServer:
    """Reads each request (head + Content-Length body), records it, and lets `answer` reply."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/chat/completions"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
                self.requests.append(head + await reader.readexactly(length))
                await self.answer(writer, len(self.requests))
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def json_answer(body: bytes = b'{"ok": true}', extra: bytes = b"") -> Answer:
    async def answer(writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    return answer


async def post(pool: ConnectionPool, url: str, headers: dict[str, str] | None = None) -> upstream_client.UpstreamResponse:
    to = target(url)
    assert to is not None
    return await pool.post(to, headers or {"Content-Type": "application/json", "Authorization": "Bearer sk-up"}, b'{"a": 1}')


def test_answers_are_read_and_one_keep_alive_connection_serves_them_all() -> None:
    async def main() -> tuple[list[bytes], ScriptedServer]:
        async with ScriptedServer(json_answer()) as server:
            pool = ConnectionPool(TIMEOUTS)
            bodies = []
            for _ in range(3):
                response = await post(pool, server.url)
                assert response.status == 200 and response.headers["content-type"] == "application/json"
                bodies.append(await response.read())
            pool.close()
            return bodies, server

    bodies, server = asyncio.run(main())
    assert bodies == [b'{"ok": true}'] * 3
    assert server.connections == 1
    head, body = server.requests[0].split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert lines[1].startswith(b"Host: 127.0.0.1:")
    for line in (b"Authorization: Bearer sk-up", b"Content-Type: application/json", b"Content-Length: 8", b"Accept-Encoding: gzip, deflate"):
        assert line in lines
    assert any(line.startswith(b"User-Agent: Python/") for line in lines)
    assert body == b'{"a": 1}'


def test_a_chunked_stream_arrives_piece_by_piece_and_whole() -> None:
    events = [b"data: {\"n\": %d}\n\n" % i for i in range(5)]

    async def answer(writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for event in events:
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def main() -> tuple[list[bytes], int]:
        async with ScriptedServer(answer) as server:
            pool = ConnectionPool(TIMEOUTS)
            response = await post(pool, server.url)
            pieces = [piece async for piece in response.content.iter_any()]
            again = await (await post(pool, server.url)).read()  # the same connection, reused
            assert again == b"".join(events)
            pool.close()
            return pieces, server.connections

    pieces, connections = asyncio.run(main())
    assert b"".join(pieces) == b"".join(events) and len(pieces) >= 3  # not held back until the end
    assert connections == 1


def test_a_body_ended_by_the_connection_and_a_gzip_body() -> None:
    async def until_close(writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 100_000)
        await writer.drain()
        writer.close()

    packed = gzip.compress(b'{"big": "' + b"y" * 50_000 + b'"}')

    async def main() -> tuple[bytes, int, bytes]:
        async with ScriptedServer(until_close) as server:
            pool = ConnectionPool(TIMEOUTS)
            whole = await (await post(pool, server.url)).read()
            await (await post(pool, server.url)).read()  # "Connection: close": not kept
            connections = server.connections
        async with ScriptedServer(json_answer(packed, b"Content-Encoding: gzip\r\n")) as server:
            unpacked = await (await post(pool, server.url)).read()
        pool.close()
        return whole, connections, unpacked

    whole, connections, unpacked = asyncio.run(main())
    assert whole == b"x" * 100_000 and connections == 2
    assert unpacked == b'{"big": "' + b"y" * 50_000 + b'"}'


def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async def answer_then_close(writer: asyncio.StreamWriter, n: int) -> None:
        await json_answer()(writer, n)
        await asyncio.sleep(0.05)
        writer.close()  # as an upstream whose keep-alive timeout passed

    async def main() -> tuple[int, int]:
        async with ScriptedServer(answer_then_close) as server:
            pool = ConnectionPool(TIMEOUTS)
            statuses = []
            for _ in range(3):
                response = await post(pool, server.url)
                await response.read()
                statuses.append(response.status)
                await asyncio.sleep(0.2)
            pool.close()
            return sum(statuses), server.connections

    assert asyncio.run(main()) == (600, 3)


def test_failures_are_aiohttp_client_errors_or_timeouts_and_the_connection_is_dropped() -> None:
    async def cut_mid_body(writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
        await writer.drain()
        writer.close()

    async def silent_after_head(writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async def not_http(writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()

    async def main() -> list[str]:
        seen = []
        pool = ConnectionPool(TIMEOUTS)
        async with ScriptedServer(cut_mid_body) as server:
            response = await post(pool, server.url)
            with pytest.raises(aiohttp.ClientError):
                await response.read()
        async with ScriptedServer(silent_after_head) as server:
            response = await post(ConnectionPool(Timeouts(connect=5, read=0.3, total=0)), server.url)
            pieces = []
            with pytest.raises(TimeoutError):
                async for piece in response.content.iter_any():
                    pieces.append(piece)
            seen.append(b"".join(pieces).decode())
            response = await post(ConnectionPool(Timeouts(connect=5, read=10, total=0.3)), server.url)
            with pytest.raises(TimeoutError):
                await response.read()
            assert server.connections == 2  # neither connection went back to the pool
        async with ScriptedServer(not_http) as server:
            with pytest.raises(aiohttp.ClientError, match="not valid HTTP"):
                await post(pool, server.url)
        free = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = free.sockets[0].getsockname()[1]
        free.close()
        await free.wait_closed()
        with pytest.raises(aiohttp.ClientError, match="cannot connect"):
            await post(pool, f"http://127.0.0.1:{port}/v1/chat/completions")
        with pytest.raises(aiohttp.ClientError, match="line break"):
            await post(pool, f"http://127.0.0.1:{port}/v1", headers={"Authorization": "Bearer x\r\nX-Injected: 1"})
        pool.close()
        return seen

    assert asyncio.run(main()) == ["hello"]


def test_an_answer_left_unread_or_a_cancelled_caller_closes_the_connection() -> None:
    async def slow(writer: asyncio.StreamWriter, n: int) -> None:
        if n == 2:
            await asyncio.sleep(5)  # the second request's caller gives up first
        await json_answer(b"z" * 10_000)(writer, n)

    async def main() -> int:
        async with ScriptedServer(slow) as server:
            pool = ConnectionPool(TIMEOUTS)
            response = await post(pool, server.url)
            first = await response.content.read(100)  # an error body read in part, as relay.upstream does
            assert first == b"z" * 100
            response.release()
            waiting = asyncio.ensure_future(post(pool, server.url))
            await asyncio.sleep(0.2)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await (await post(pool, server.url)).read()
            pool.close()
            return server.connections

    assert asyncio.run(main()) == 3  # each of the first two was closed, not reused


def test_answers_read_whole_streamed_or_in_part_leave_no_reference_cycle() -> None:
    """Objects in a cycle wait for the cyclic garbage collector, whose passes cost a worker CPU
    and pauses; an exchange must be freed by reference counting alone. (The pool and its idle
    connections refer to each other, once per event loop: they are alive during the check.)"""

    async def main() -> list[str]:
        async with ScriptedServer(json_answer(b"y" * 5_000)) as server:
            pool = ConnectionPool(TIMEOUTS)
            await (await post(pool, server.url)).read()  # a connection, and the statements' caches, made before
            with cyclic_garbage() as garbage:
                for _ in range(3):
                    await (await post(pool, server.url)).read()
                    _ = [piece async for piece in (await post(pool, server.url)).content.iter_any()]
                    response = await post(pool, server.url)
                    await response.content.read(100)
                    response.release()  # left unread: its connection is closed
                del response
            pool.close()
            return [type(obj).__name__ for obj in garbage if type(obj).__module__ == upstream_client.__name__]

    assert asyncio.run(main()) == []


def test_reading_pauses_while_too_much_waits_unread() -> None:
    size = 20 * 1024 * 1024

    async def flood(writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):
            writer.write(b"b" * 65536)
            await writer.drain()

    async def main() -> tuple[int, int]:
        async with ScriptedServer(flood) as server:
            pool = ConnectionPool(TIMEOUTS)
            response = await post(pool, server.url)
            await asyncio.sleep(0.5)  # the reader is slow: the server could send it all meanwhile
            conn = response._conn
            assert conn is not None and conn.paused
            buffered = conn.buffered
            total = 0
            async for piece in response.content.iter_any():
                total += len(piece)
            pool.close()
            return buffered, total

    buffered, total = asyncio.run(main())
    assert buffered < upstream_client.HIGH_WATER + 512 * 1024  # not the 20 MB the server had to send
    assert total == size


def test_the_request_target_is_yarls_and_what_the_client_leaves_to_aiohttp() -> None:
    to = target("http://127.0.0.1:8080/model/anthropic.claude%3Av2/invoke?x=1")
    assert to is not None
    key, lines = to
    assert key == ("http", "127.0.0.1", 8080)
    assert lines.startswith(f"POST {yarl.URL('http://127.0.0.1:8080/model/anthropic.claude%3Av2/invoke?x=1').raw_path_qs} HTTP/1.1\r\n")
    assert "Host: 127.0.0.1:8080\r\n" in lines
    secure = target("https://api.openai.com/v1/chat/completions")
    assert secure is not None and secure[0] == ("https", "api.openai.com", 443) and "Host: api.openai.com\r\n" in secure[1]
    assert target("http://user:pass@127.0.0.1/v1") is None  # credentials: aiohttp sends them
    assert target("ftp://127.0.0.1/v1") is None


def _self_signed() -> tuple[bytes, bytes]:
    """A key and certificate for 127.0.0.1 (PEM)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem_key, cert.public_bytes(serialization.Encoding.PEM)


def test_https_upstreams_are_verified_and_kept_alive(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import ssl

    pem_key, pem_cert = _self_signed()
    (tmp_path / "key.pem").write_bytes(pem_key)
    (tmp_path / "cert.pem").write_bytes(pem_cert)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    async def main() -> tuple[list[bytes], int, str]:
        scripted = ScriptedServer(json_answer())
        server = await asyncio.start_server(scripted._serve, "127.0.0.1", 0, ssl=server_side)
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
        untrusting = ConnectionPool(TIMEOUTS)  # the system's CAs do not know this certificate
        with pytest.raises(aiohttp.ClientError, match="CERTIFICATE_VERIFY_FAILED"):
            await post(untrusting, url)
        pool = ConnectionPool(TIMEOUTS)
        pool._ssl = ssl.create_default_context(cadata=pem_cert.decode())
        bodies = [await (await post(pool, url)).read() for _ in range(3)]
        pool.close()
        await asyncio.sleep(0.05)  # the server's handler sees the end of the connection
        server.close()
        return bodies, scripted.connections, scripted.requests[0].decode()

    bodies, connections, request = asyncio.run(main())
    assert bodies == [b'{"ok": true}'] * 3
    assert connections == 1  # one kept-alive connection for three (the refused handshake never got that far)
    assert request.startswith("POST /v1/chat/completions HTTP/1.1\r\n")


def test_relay_proxy_calls_go_through_aiohttp_and_the_rest_through_the_pool(settings) -> None:  # type: ignore[no-untyped-def]
    from relay.http import close_session
    from relay.upstream import open_upstream

    async def main() -> tuple[list[bytes], list[bytes]]:
        async with ScriptedServer(json_answer()) as upstream, ScriptedServer(json_answer()) as proxy:
            direct = await open_upstream(upstream.url, {"Content-Type": "application/json"}, b"{}")
            assert isinstance(direct, upstream_client.UpstreamResponse) and await direct.read() == b'{"ok": true}'
            settings.RELAY_PROXY = proxy.url.rsplit("/v1", 1)[0]
            proxied = await open_upstream("http://upstream.invalid/v1/chat/completions", {"Content-Type": "application/json"}, b"{}")
            assert isinstance(proxied, aiohttp.ClientResponse) and await proxied.read() == b'{"ok": true}'
            proxied.release()
            await close_session()
            return upstream.requests, proxy.requests

    direct, proxied = asyncio.run(main())
    assert direct[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert proxied[0].startswith(b"POST http://upstream.invalid/v1/chat/completions HTTP/1.1\r\n")  # the absolute form a proxy gets


def test_a_host_name_is_looked_up_once_for_many_new_connections() -> None:
    async def main() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        lookups = 0
        real = loop.getaddrinfo

        async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal lookups
            lookups += 1
            return await real(*args, **kwargs)

        loop.getaddrinfo = counted  # type: ignore[method-assign]
        async with ScriptedServer(json_answer()) as server:
            url = server.url.replace("127.0.0.1", "localhost")  # may resolve to ::1 first: that one refuses, 127.0.0.1 answers
            pool = ConnectionPool(TIMEOUTS)
            responses = await asyncio.gather(*(post(pool, url) for _ in range(10)))  # ten new connections at once
            bodies = {await response.read() for response in responses}
            pool.close()
            return lookups, server.connections, len(bodies)

    assert asyncio.run(main()) == (1, 10, 1)
