"""The lean async HTTP app serving the hot /v1 POST endpoints (routed in oneapi_site/asgi.py).

Why not a Django view: an empty async Django view costs 1.4-2.2 ms of CPU per request here
(stock Django starts a thread per request), this app ~0.07 ms. It reads keys, channels and
prices from in-process caches and accounts with raw statements (see relay.services).
"""

from __future__ import annotations

import asyncio
import gc
import logging

import orjson
from django.conf import settings

from billing import batch as batching

from . import metrics, tracing, url_options
from .asgi_io import ClientGone, Receive, Responder, Scope, Send, header_map, read_body
from .cache import cache
from .context import RelayContext
from .db import close_database, get_database
from .errors import InvalidRequest, RelayError
from .formats import FORMATS, CallerFormat
from .http import close_session
from .keyauth import extract_key
from .ratelimit import check_key_rate, limiter, scope_client_ip
from .request_id import new_request_id
from .routes import RELAY_ROUTES, normalise
from .services import authenticate, count_tokens, relay_request

logger = logging.getLogger("relay")


def freeze_startup_heap() -> None:
    """Keep what a worker loaded at startup out of the cyclic garbage collector's full passes.

    A worker holds ~175,000 objects once Django, the relay and its caches are loaded (modules,
    classes, settings, templates). Every full collection walked them all: 100-140 ms during
    which the worker answered nothing, a few times a minute under load (measured here at c=32,
    bench/RESULTS.md session 12). They live as long as the process, so they are moved to the
    permanent generation (https://docs.python.org/3/library/gc.html#gc.freeze), after one
    collection so that no garbage of the startup is kept forever. A full pass then walks only
    what was made since: ~1-3 ms. Reference counting still frees frozen objects.
    """
    gc.collect()
    gc.freeze()
    logger.info("relay worker ready: %d objects loaded at startup frozen out of the garbage collector", gc.get_freeze_count())


def forget_tracebacks(error: BaseException) -> None:
    """Drop the tracebacks of an answered error and of the errors it came from.

    A traceback holds the frames it passed through, and a frame its variables: `record` here,
    which holds the error; `last_error` in the retry loop. Each such loop is a reference cycle
    that kept the whole request (its transport, buffers, context) alive until the cyclic garbage
    collector found it: ~40 objects per refused request (bad key, bad JSON, unknown model, an
    upstream error). Without the tracebacks, reference counting frees them at once. Errors that
    need one are logged with it before this (`logger.exception`).
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        exc = pending.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        exc.__traceback__ = None
        pending += (exc.__cause__, exc.__context__)


class RelayApp:
    def __init__(self) -> None:
        self._start_lock: asyncio.Lock | None = None
        self._max_body = int(settings.RELAY_MAX_BODY_MB * 1024 * 1024)
        self.active = 0  # requests in progress: shutdown waits for their settlement

    async def _ensure_started(self) -> None:
        if cache.started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            await cache.start()
            tracing.writer.start()
            if batching.enabled():
                batching.batch.start(get_database())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        out = Responder(send, receive, request_id)
        caller = FORMATS[RELAY_ROUTES[normalise(scope["path"])]]
        record = tracing.RequestRecord()
        self.active += 1
        try:
            await self._handle(scope, receive, out, caller, record)
        except RelayError as err:
            record.error = err
            await self._send_error(out, err, caller)
        except ClientGone:
            pass
        except Exception:
            logger.exception("request %s failed", request_id)
            record.error = RelayError("internal error in the gateway")
            await self._send_error(out, record.error, caller)
        finally:
            out.close()
            self.active -= 1
            tracing.finish_request(record, out, caller.name)
            if record.error is not None:
                forget_tracebacks(record.error)

    async def _send_error(self, out: Responder, err: RelayError, caller: CallerFormat) -> None:
        if not out.started:
            await out.send_json(err.status, caller.render_error(err, out.request_id), err.headers)
        elif not out.finished:  # mid-stream: an in-band error event of the caller's format
            await out.end(caller.stream_error(err, out.request_id))

    async def _handle(
        self, scope: Scope, receive: Receive, out: Responder, caller: CallerFormat, record: tracing.RequestRecord
    ) -> None:
        headers = header_map(scope)
        client_ip = scope_client_ip(headers, scope)
        await self._ensure_started()
        presented = extract_key(headers)
        key = await authenticate(presented, client_ip)
        body = await read_body(receive, headers, self._max_body)
        assert presented is not None
        await check_key_rate(presented.digest)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidRequest("the request body is not valid JSON", code="invalid_json") from None
        model = caller.validate(payload)
        reasoning_format, changed = url_options.apply(caller.name, payload, url_options.parse(scope.get("query_string", b"")))
        if changed:
            body = orjson.dumps(payload)
        ctx = RelayContext(
            request_id=out.request_id,
            format=caller,
            key=key,
            presented=presented,
            payload=payload,
            body=body,
            model=model,
            is_stream=caller.streams and payload.get("stream") is True,
            client_ip=client_ip,
            reasoning_format=reasoning_format,
        )
        record.ctx = ctx
        if ctx.is_stream:  # only a stream stops early for a client gone (a task per request otherwise)
            out.watch_disconnect()
        if caller.name == "count_tokens":
            await count_tokens(ctx, out)
        else:
            await relay_request(ctx, out)

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI lifespan: start caches at boot, close pools at shutdown."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._ensure_started()
                except Exception as exc:  # a database that is not migrated yet must not stop the server
                    logger.warning("relay cache not started at boot: %s", exc)
                    await cache.stop()
                freeze_startup_heap()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._drain()
                if batching.enabled():
                    await batching.batch.stop(get_database())  # what the last settles left
                await tracing.writer.stop()
                await limiter.close()
                metrics.process_exit()
                await cache.stop()
                await close_session()
                await close_database()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _drain(self, timeout: float = 10.0) -> None:
        """Requests the server cancelled at its shutdown deadline are still settling their
        billing (relay.attempt settles a cut stream): give them time before pools close."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.active and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)


relay_app = RelayApp()
