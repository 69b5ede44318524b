"""Closed-loop HTTP load generator, run as its own process by bench/run.py.

    python bench/loadgen.py '<json spec>'    ->  one JSON object on stdout

Keeps ``concurrency`` requests in flight for ``warmup + duration`` seconds. Only requests that
start inside the measured window count; the window closes at ``warmup + duration``, then the
requests still in flight finish (bounded by ``timeout``). The CPU of each process group named in
``cpu_groups`` (and of the whole machine) is sampled at the window's start and after the drain,
so server CPU per request is measured here, at the exact window boundaries.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import cpu_delta, cpu_seconds, group_cpu_seconds, machine_busy_seconds  # noqa: E402


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, counted requests only
    ttfbs: list[float] = field(default_factory=list)  # first body chunk (streams)
    errors: int = 0  # counted requests that failed
    sent: int = 0  # every request sent, warm-up included
    ok: int = 0  # every request answered 200 and complete, warm-up included
    error_samples: list[str] = field(default_factory=list)

    def fail(self, counted: bool, what: str) -> None:
        if counted:
            self.errors += 1
        if len(self.error_samples) < 5 and what not in self.error_samples:
            self.error_samples.append(what)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank] * 1000


async def one_request(
    session: aiohttp.ClientSession, url: str, body: bytes, stream: bool, stats: Stats, t0: float
) -> None:
    start = time.perf_counter()
    counted = start >= t0
    stats.sent += 1
    first: float | None = None
    try:
        async with session.post(url, data=body) as resp:
            if stream:
                tail = b""
                async for chunk in resp.content.iter_any():
                    if first is None:
                        first = time.perf_counter()
                    tail = (tail + chunk)[-64:]
                complete = b"[DONE]" in tail
                detail = tail.decode("utf-8", "replace")
            else:
                data = await resp.read()
                complete = b'"choices"' in data
                detail = data[:300].decode("utf-8", "replace")
            end = time.perf_counter()
            if resp.status != 200 or not complete:
                stats.fail(counted, f"HTTP {resp.status} complete={complete}: {detail}")
                return
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        stats.fail(counted, f"{type(exc).__name__}: {exc}")
        return
    stats.ok += 1
    if counted:
        stats.latencies.append(end - start)
        if first is not None:
            stats.ttfbs.append(first - start)


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(spec["concurrency"])
    stream = bool(spec["stream"])
    payload: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello in one sentence."}],
    }
    if stream:
        payload["stream"] = True
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **spec.get("headers", {})}
    timeout = aiohttp.ClientTimeout(total=float(spec["timeout"]), sock_connect=5)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    stats = Stats()
    # name -> {"tree": root pid} or {"match": process title substring}: whose CPU to measure
    cpu_groups: dict[str, dict[str, object]] = spec.get("cpu_groups", {})
    samples: dict[str, Any] = {}

    begin = time.perf_counter()
    t0 = begin + float(spec["warmup"])
    t1 = t0 + float(spec["duration"])

    async def client_loop(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < t1:
            await one_request(session, spec["url"], body, stream, stats, t0)

    async def mark_window_start() -> None:
        await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
        samples["t0"] = time.perf_counter()
        samples["machine0"] = machine_busy_seconds()
        samples["self0"] = cpu_seconds(os.getpid())
        samples["groups0"] = {name: group_cpu_seconds(group) for name, group in cpu_groups.items()}

    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as session:
        marker = asyncio.create_task(mark_window_start())
        await asyncio.gather(*(client_loop(session) for _ in range(concurrency)))
        await marker
        drained = time.perf_counter()
    server_cpu = {name: cpu_delta(samples["groups0"][name], group_cpu_seconds(g)) for name, g in cpu_groups.items()}
    client_cpu = cpu_seconds(os.getpid()) - samples["self0"]
    machine = machine_busy_seconds() - samples["machine0"]
    window = time.perf_counter() - samples["t0"]
    result: dict[str, Any] = {
        "n": len(stats.latencies),
        "rps": len(stats.latencies) / float(spec["duration"]),
        "p50": percentile(stats.latencies, 50),
        "p99": percentile(stats.latencies, 99),
        "ttfb_p50": percentile(stats.ttfbs, 50) if stream else None,
        "ttfb_p99": percentile(stats.ttfbs, 99) if stream else None,
        "errors": stats.errors,
        "error_samples": stats.error_samples,
        "sent": stats.sent,
        "ok": stats.ok,
        "drain_s": drained - t1,
        "window_s": window,
        "cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        # Cores kept busy by everything else on the machine (other users, our parent, kernel).
        "other_cores": max(0.0, machine - client_cpu - sum(server_cpu.values())) / window,
    }
    return result


def main() -> int:
    spec = json.loads(sys.argv[1])
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(spec))
    else:
        result = uvloop.run(run(spec))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
