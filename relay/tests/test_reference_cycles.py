"""Answered requests are freed by reference counting, not left to the cyclic garbage collector.

Objects in a reference cycle wait for a collection; the collector's passes cost a worker CPU and
pauses, and meanwhile a refused request's transport, buffers and context stay in memory
(relay.app.forget_tracebacks, bench/RESULTS.md session 12). The relay app runs here in this
process, through its real lifespan, database and caches, with a fake provider as upstream.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
from pathlib import Path
from typing import Any

import pytest

import relay
from relay.app import relay_app

from .helpers import cyclic_garbage

pytestmark = pytest.mark.django_db(transaction=True)
RELAY_DIR = str(Path(relay.__file__).parent)


def _ours(obj: Any) -> str | None:
    """A name for a garbage object the relay made (its class, or a frame of its code), else None."""
    if type(obj).__module__.startswith("relay."):
        return type(obj).__qualname__
    if type(obj).__name__ == "frame" and obj.f_code.co_filename.startswith(RELAY_DIR):
        return "frame of " + obj.f_code.co_qualname
    return None


async def _call(key: str, body: bytes) -> int:
    scope = {
        "type": "http", "method": "POST", "path": "/v1/chat/completions", "query_string": b"", "client": ("127.0.0.1", 5000),
        "headers": [(b"authorization", b"Bearer " + key.encode()), (b"content-type", b"application/json")],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await relay_app(scope, receive, send)
    return int(sent[0]["status"])


def test_answered_and_refused_requests_leave_no_reference_cycles(make_user, make_key, make_channel, unique_model):
    _, raw = make_key(make_user())
    make_channel(unique_model)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    make_channel(unique_model + "-down", base_url=f"http://127.0.0.1:{closed_port}")  # an upstream error, hold refunded

    def chat(model: str) -> bytes:
        return json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()

    cases = [
        ("sk-" + "0" * 48, chat(unique_model)),  # unknown key: 401
        (raw, b"{not json"),  # 400
        (raw, chat("no-such-model")),  # 404, after a second look at the channels
        (raw, chat(unique_model + "-down")),  # 502: the upstream cannot be reached
        (raw, chat(unique_model)),  # 200, billed
    ]

    async def main() -> tuple[list[int], list[str]]:
        lifespan: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        started = asyncio.Event()

        async def life_send(message: dict[str, str]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()

        await lifespan.put({"type": "lifespan.startup"})
        life = asyncio.ensure_future(relay_app.lifespan({"type": "lifespan"}, lifespan.get, life_send))
        await started.wait()
        try:
            for key, body in cases:  # once first: caches, connections, prepared statements
                await _call(key, body)
            with cyclic_garbage() as garbage:
                statuses = [await _call(key, body) for key, body in cases for _ in range(3)]
            found = sorted({name for obj in garbage if (name := _ours(obj))})
        finally:
            await lifespan.put({"type": "lifespan.shutdown"})
            await life
        return statuses, found

    try:
        statuses, found = asyncio.run(main())
    finally:
        gc.unfreeze()  # the lifespan froze this test process's heap, as it does a worker's
    assert statuses == [401] * 3 + [400] * 3 + [404] * 3 + [502] * 3 + [200] * 3
    assert found == []
