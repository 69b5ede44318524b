"""Closed-loop HTTP load generator, run as its own process by bench/run.py.

    python bench/loadgen.py '<json spec>'    ->  one JSON object on stdout

Keeps ``concurrency`` requests in flight for ``warmup + duration`` seconds. Only requests that
start inside the measured window count; the window closes at ``warmup + duration``, then the
requests still in flight finish (bounded by ``timeout``). The CPU of each process group named in
``cpu_groups`` (and of the whole machine) is sampled at the window's start and after the drain,
so server CPU per request is measured here, at the exact window boundaries.

With ``requests: N`` the run instead stops after N requests were sent (no warm-up; ``duration``
is then only a cap) -- the soak, big-stream and slow-streams modes use that. ``stream`` may be
``"mix"`` (every other request streams). ``rss_pids`` makes a side task sample those processes'
RSS every ``rss_every`` seconds. For streams, the gap between two body reads is tracked: the
longest wait any stream had between two chunks.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import cpu_delta, cpu_seconds, group_cpu_seconds, machine_busy_seconds, rss_mib, steal_seconds  # noqa: E402


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, counted requests only
    ttfbs: list[float] = field(default_factory=list)  # first body chunk (streams)
    max_gaps: list[float] = field(default_factory=list)  # per counted stream: longest wait between two reads
    gap_positions: list[float] = field(default_factory=list)  # when it ended: 0 = the stream's start, 1 = its end
    errors: int = 0  # counted requests that failed
    sent: int = 0  # every request sent, warm-up included
    ok: int = 0  # every request answered 200 and complete, warm-up included
    body_bytes: int = 0  # of counted requests
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
    max_gap = 0.0
    gap_end = 0.0
    size = 0
    try:
        async with session.post(url, data=body) as resp:
            if stream:
                tail = b""
                last = start
                async for chunk in resp.content.iter_any():
                    now = time.perf_counter()
                    if first is None:
                        first = now
                    elif now - last > max_gap:
                        max_gap, gap_end = now - last, now
                    last = now
                    size += len(chunk)
                    tail = (tail + chunk[-64:])[-64:]
                complete = b"[DONE]" in tail
                detail = tail.decode("utf-8", "replace")
            else:
                data = await resp.read()
                size = len(data)
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
        stats.body_bytes += size
        if first is not None:
            stats.ttfbs.append(first - start)
            stats.max_gaps.append(max_gap)
            stats.gap_positions.append((gap_end - start) / (end - start) if max_gap else 0.0)


def request_bodies(spec: dict[str, Any]) -> tuple[bytes, bytes]:
    """(non-stream body, stream body): the models `model` and `stream_model` (fixed JSON / SSE upstreams)."""
    payload: dict[str, Any] = {
        "model": spec.get("model", "bench-json"),
        "messages": [{"role": "user", "content": "Say hello in one sentence."}],
    }
    streaming = {**payload, "model": spec.get("stream_model", "bench-sse"), "stream": True}
    streaming["stream_options"] = {"include_usage": True}
    return json.dumps(payload).encode(), json.dumps(streaming).encode()


def window_start(cpu_groups: dict[str, dict[str, object]]) -> dict[str, Any]:
    """The CPU readings at the measured window's start (see `window_cpu`)."""
    return {
        "t0": time.perf_counter(),
        "machine0": machine_busy_seconds(),
        "steal0": steal_seconds(),
        "groups0": {name: group_cpu_seconds(group) for name, group in cpu_groups.items()},
    }


def window_cpu(start: dict[str, Any], cpu_groups: dict[str, dict[str, object]], client_cpu: float) -> dict[str, Any]:
    """Who used the CPU since `start`: each group (server), the load generator, the rest."""
    after = {name: group_cpu_seconds(g) for name, g in cpu_groups.items()}
    server_cpu = {name: cpu_delta(start["groups0"][name], after[name]) for name in cpu_groups}
    machine = machine_busy_seconds() - start["machine0"]
    steal = steal_seconds() - start["steal0"]
    window = time.perf_counter() - start["t0"]
    return {
        "window_s": window,
        "cpu_s": server_cpu,
        # How the work was split between the processes (workers).
        "cpu_by_pid": {name: {pid: max(0.0, cpu - start["groups0"][name].get(pid, 0.0)) for pid, cpu in after[name].items()}
                       for name in cpu_groups},  # fmt: skip
        "client_cpu_s": client_cpu,
        "client_cores": client_cpu / window,
        # Cores kept busy by everything else on the machine (other users, our parent, kernel).
        "other_cores": max(0.0, machine - steal - client_cpu - sum(server_cpu.values())) / window,
        # Cores the hypervisor took for other guests: on a shared VM this slows every contestant.
        "steal_cores": steal / window,
    }


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(spec["concurrency"])
    mode = spec["stream"]  # True, False or "mix"
    limit = spec.get("requests")  # stop after this many requests (no warm-up)
    plain, streaming = request_bodies(spec)
    headers = {"Content-Type": "application/json", **spec.get("headers", {})}
    timeout = aiohttp.ClientTimeout(total=float(spec["timeout"]), sock_connect=10)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    stats = Stats()
    # name -> {"tree": root pid} or {"match": process title substring}: whose CPU to measure
    cpu_groups: dict[str, dict[str, object]] = spec.get("cpu_groups", {})
    rss_pids: list[int] = [int(p) for p in spec.get("rss_pids", [])]
    rss_samples: list[dict[str, Any]] = []
    samples: dict[str, Any] = {}

    begin = time.perf_counter()
    t0 = begin + (0.0 if limit else float(spec["warmup"]))
    t1 = t0 + float(spec["duration"])

    async def client_loop(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < t1 and (limit is None or stats.sent < limit):
            stream = mode if isinstance(mode, bool) else stats.sent % 2 == 1
            await one_request(session, spec["url"], streaming if stream else plain, stream, stats, t0)

    async def mark_window_start() -> None:
        await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
        samples.update(window_start(cpu_groups), self0=cpu_seconds(os.getpid()))

    async def sample_rss() -> None:
        while True:
            done = stats.ok + stats.errors
            rss_samples.append(
                {"t": time.perf_counter() - begin, "done": done, "rss": {p: rss_mib(p) for p in rss_pids}}
            )
            await asyncio.sleep(float(spec.get("rss_every", 1.0)))

    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as session:
        marker = None if limit else asyncio.create_task(mark_window_start())
        if marker is None:
            await mark_window_start()
        sampler = asyncio.create_task(sample_rss()) if rss_pids else None
        await asyncio.gather(*(client_loop(session) for _ in range(concurrency)))
        if marker is not None:
            await marker
        drained = time.perf_counter()
        if sampler is not None:
            sampler.cancel()
            rss_samples.append(
                {"t": drained - begin, "done": stats.ok + stats.errors, "rss": {p: rss_mib(p) for p in rss_pids}}
            )
    cpu = window_cpu(samples, cpu_groups, client_cpu=cpu_seconds(os.getpid()) - samples["self0"])
    elapsed = (drained - t0) if limit else float(spec["duration"])
    streamed = mode is not False
    return {
        "n": len(stats.latencies),
        "rps": len(stats.latencies) / elapsed,
        "elapsed_s": drained - t0,
        "p50": percentile(stats.latencies, 50),
        "p90": percentile(stats.latencies, 90),
        "p99": percentile(stats.latencies, 99),
        "max": percentile(stats.latencies, 100),
        "ttfb_p50": percentile(stats.ttfbs, 50) if streamed else None,
        "ttfb_p99": percentile(stats.ttfbs, 99) if streamed else None,
        "ttfb_max": percentile(stats.ttfbs, 100) if streamed else None,
        "gap_p50": percentile(stats.max_gaps, 50) if streamed else None,  # of the per-stream longest gaps
        "gap_p99": percentile(stats.max_gaps, 99) if streamed else None,
        "gap_max": percentile(stats.max_gaps, 100) if streamed else None,
        # Where each stream's longest gap ended, counted (a list would be one float per stream:
        # megabytes of JSON at 10,000 streams/s).
        "gap_positions": {
            "start": sum(1 for p in stats.gap_positions if p < 0.2),
            "middle": sum(1 for p in stats.gap_positions if 0.2 <= p <= 0.8),
            "end": sum(1 for p in stats.gap_positions if p > 0.8),
        },
        "body_bytes": stats.body_bytes,
        "errors": stats.errors,
        "error_samples": stats.error_samples,
        "sent": stats.sent,
        "ok": stats.ok,
        "abandoned": 0,  # every request started was waited for (see run_wrk)
        "drain_s": drained - t1,
        **cpu,
        "rss_samples": rss_samples,
    }


WRK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk_report.lua")
WRK_DRAIN_S = 0.3  # after wrk's deadline: the requests it left in flight finish in the server


def _wrk(spec: dict[str, Any], seconds: float, body: bytes) -> dict[str, Any]:
    """One wrk run (one thread, `concurrency` keep-alive connections); its JSON summary."""
    cmd = ["wrk", "-t1", f"-c{int(spec['concurrency'])}", f"-d{max(1, round(seconds))}s",
           f"--timeout={int(spec['timeout'])}s", "-s", WRK_SCRIPT, spec["url"]]  # fmt: skip
    env = {**os.environ, "BENCH_BODY": body.decode(), "BENCH_AUTH": spec.get("headers", {}).get("Authorization", "")}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + float(spec["timeout"]) + 30)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]} {done.stdout[-2000:]}")
    return dict(json.loads(lines[-1]))


def run_wrk(spec: dict[str, Any]) -> dict[str, Any]:
    """The non-stream cases with wrk as the load (C, ~10 us of CPU a request against ~120 us for
    this script's aiohttp client, which at 2,000+ req/s took a third of a core from the server
    it measured on this 2-core machine). A warm-up run, then the measured run between the CPU
    samples. wrk stops at its deadline with up to `concurrency` requests in flight and closes
    their connections: `abandoned` counts them (the server may have received and billed each, or
    not: a close with unread data is a reset, which can drop a request not yet read). They are not
    in req/s or latency. Latency: wrk's histogram of the measured run (completed requests)."""
    body, _ = request_bodies(spec)
    cpu_groups: dict[str, dict[str, object]] = spec.get("cpu_groups", {})
    warm = _wrk(spec, float(spec["warmup"]), body) if float(spec["warmup"]) > 0 else None
    start = window_start(cpu_groups)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = _wrk(spec, float(spec["duration"]), body)
    time.sleep(WRK_DRAIN_S)
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)  # wrk's
    runs = [m] if warm is None else [m, warm]
    socket_errors = [r["connect"] + r["read"] + r["write"] + r["timeout"] for r in runs]
    ok = sum(r["completed"] - r["bad"] for r in runs)
    abandoned = sum(max(0, r["sent"] - r["completed"] - e) for r, e in zip(runs, socket_errors, strict=True))
    n = m["completed"] - m["bad"]
    elapsed = m["duration_us"] / 1e6
    return {
        "n": n, "rps": n / elapsed, "elapsed_s": elapsed,
        "p50": m["p50"] / 1000, "p90": m["p90"] / 1000, "p99": m["p99"] / 1000, "max": m["max"] / 1000,
        **{key: None for key in ("ttfb_p50", "ttfb_p99", "ttfb_max", "gap_p50", "gap_p99", "gap_max")},
        "gap_positions": {"start": 0, "middle": 0, "end": 0},
        "body_bytes": m["bytes"], "errors": m["bad"] + socket_errors[0], "error_samples": [m["sample"]] if m["sample"] else [],
        "sent": sum(r["sent"] for r in runs), "ok": ok, "abandoned": abandoned, "drain_s": WRK_DRAIN_S,
        **window_cpu(start, cpu_groups, client_cpu), "rss_samples": [], "load": "wrk",
    }  # fmt: skip


def main() -> int:
    spec = json.loads(sys.argv[1])
    if spec.get("load") == "wrk":
        sys.stdout.write(json.dumps(run_wrk(spec)) + "\n")
        return 0
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(spec))
    else:
        result = uvloop.run(run(spec))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
