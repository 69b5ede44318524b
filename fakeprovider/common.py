"""HTTP plumbing shared by every mode of the fake provider.

Each mode answers in its own wire format, but they all take a request the same way
(read the body, record it, parse the ``/s/<scenarios>`` prefix, check auth, sleep the
scenario's delay, answer a forced error) and send an answer the same way (honouring the
``slow`` and ``cut`` scenarios).  The shared parts live here; each mode supplies its auth
rule and its error shapes through :class:`Rules`.

No mode is imported here, so modes import this module at load time (no late imports).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any

import orjson
from aiohttp import web

from .scenarios import DEFAULT, Scenario, ScenarioError, parse_scenarios

__all__ = ["COUNTER", "RECORDS", "Rules", "abort_after", "cut_events", "prelude", "read_request", "record",
           "screen", "send_whole", "write_events"]

_JSON = "application/json"

#: The last API requests, for ``GET /_requests`` (absent when the app does not record).
RECORDS = web.AppKey("records", deque)
#: Sequence numbers for ids (``chatcmpl-fake-<n>``, ``msg_fake_<n>``, ...).
COUNTER = web.AppKey("counter", count)


# --------------------------------------------------------------------------
# Taking a request
# --------------------------------------------------------------------------
def record(request: web.Request, body: Any, *, query: bool = False) -> None:
    """Append the request to ``app[RECORDS]`` (with its query string when *query*)."""
    records = request.app.get(RECORDS)
    if records is None:
        return
    entry: dict[str, Any] = {"method": request.method, "path": request.path}
    if query:
        entry["query"] = request.query_string
    entry["headers"] = {k.lower(): v for k, v in request.headers.items()}
    entry["body"] = body
    records.append(entry)


async def read_request(request: web.Request, *, query: bool = False) -> tuple[Any, bool]:
    """Read and parse the JSON body and record the request: ``(body, bad_json)``.

    *body* is None when the body is empty or not valid JSON (*bad_json* tells which).
    """
    raw = await request.read() if request.can_read_body else b""
    body: Any = None
    bad_json = False
    if raw:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            bad_json = True
    record(request, body, query=query)
    return body, bad_json


def _no_check(request: web.Request) -> web.Response | None:
    return None


@dataclass(frozen=True, slots=True)
class Rules:
    """How one mode screens a request: its auth rule and the shapes of its early errors."""

    #: The answer to a malformed scenario prefix, given the ScenarioError's message.
    scenario_error: Callable[[str], web.Response]
    #: The answer to a forced error (``/s/429`` ...), given its status.
    forced: Callable[[int], web.Response]
    #: The answer to a rejected request (missing key ...), or None when it may go on.
    auth: Callable[[web.Request], web.Response | None] = _no_check
    #: The answer to a body that is not JSON; None leaves that check to the mode.
    bad_json: Callable[[], web.Response] | None = None
    #: The scenario parser (the Anthropic mode knows one more error status).
    parse: Callable[[str], Scenario] = parse_scenarios
    #: Whether the recorded request keeps its query string.
    query: bool = False


async def screen(request: web.Request, rules: Rules, bad_json: bool = False) -> Scenario | web.Response:
    """Scenario, auth, delay, forced error, bad JSON: the scenario, or the response that ends the request."""
    spec = request.match_info.get("scenario")
    try:
        sc = rules.parse(spec) if spec else DEFAULT
    except ScenarioError as exc:
        return rules.scenario_error(str(exc))
    failure = rules.auth(request)
    if failure is not None:
        return failure
    if sc.pre_delay:
        await asyncio.sleep(sc.pre_delay)
    if sc.error is not None:
        return rules.forced(sc.error)
    if bad_json and rules.bad_json is not None:
        return rules.bad_json()
    return sc


async def prelude(request: web.Request, rules: Rules) -> tuple[Scenario, Any] | web.Response:
    """:func:`read_request` then :func:`screen`: ``(scenario, body)`` or the response that ends the request."""
    body, bad_json = await read_request(request, query=rules.query)
    sc = await screen(request, rules, bad_json)
    return sc if isinstance(sc, web.Response) else (sc, body)


# --------------------------------------------------------------------------
# Sending an answer
# --------------------------------------------------------------------------
async def abort_after(request: web.Request, resp: web.StreamResponse, data: bytes) -> web.StreamResponse:
    """Write *data*, then drop the connection (the ``cut`` scenario).

    ``transport.close()`` flushes what was written before closing, so the
    client really receives a truncated body; aiohttp swallows the resulting
    ConnectionError when it tries to finish the response.
    """
    if data:
        await resp.write(data)
    if request.transport is not None:
        request.transport.close()
    return resp


def cut_events(head: list[bytes], body: list[bytes], tail: list[bytes], sc: Scenario) -> list[bytes]:
    """The events to send: all of them, or under ``cut`` the head and about half the body."""
    if sc.cut:
        return head + body[: max(1, len(body) // 2)]
    return head + body + tail


async def write_events(request: web.Request, resp: web.StreamResponse, events: Sequence[bytes],
                       sc: Scenario) -> web.StreamResponse:
    """Prepare *resp* and write *events*: one write unless ``slow`` spaces them; ``cut`` hangs up after.

    The caller has already trimmed *events* for ``cut`` (see :func:`cut_events`).
    """
    await resp.prepare(request)
    if sc.slow:
        for i, event in enumerate(events):
            if i:
                await asyncio.sleep(sc.slow)
            await resp.write(event)
        data = b""
    else:
        data = b"".join(events)  # one write: far cheaper under load
    if sc.cut:
        return await abort_after(request, resp, data)
    await resp.write(data)
    return resp


async def send_whole(request: web.Request, data: bytes, sc: Scenario,
                     headers: dict[str, str] | None = None) -> web.StreamResponse:
    """A JSON answer; under ``cut``, promise its full Content-Length, deliver half, hang up."""
    if sc.cut:
        resp = web.StreamResponse(headers={"Content-Type": _JSON, **(headers or {})})
        resp.content_length = len(data)
        await resp.prepare(request)
        return await abort_after(request, resp, data[: len(data) // 2])
    return web.Response(body=data, content_type=_JSON, headers=headers)
