"""The benchmark's separate modes: --soak, --big-stream, --slow-streams, --profile (gateway only).

Each returns Markdown lines for its RESULTS.md section and prints as it goes. All load comes
from bench/loadgen.py in its own process, bounded in time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from procstat import cpu_seconds, rss_mib, thread_cpu_seconds
from servers import BenchError, Stack, stop_group

BENCH = Path(__file__).resolve().parent
TOOLS_VENV = BENCH / ".venv-tools"  # py-spy lives here, outside the project's venv


def run_loadgen(spec: dict[str, Any], limit: float | None = None) -> dict[str, Any]:
    """Run bench/loadgen.py in its own process (and process group); bounded in time."""
    limit = limit or spec.get("warmup", 0) + spec["duration"] + spec["timeout"] + 30
    cmd = [sys.executable, str(BENCH / "loadgen.py"), json.dumps(spec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"load generator still running after {limit:.0f}s") from exc
    finally:
        stop_group(proc, grace=2.0)
    if not out.strip():
        raise BenchError(f"load generator failed:\n{err[-3000:]}")
    try:
        return dict(json.loads(out.splitlines()[-1]))
    except json.JSONDecodeError as exc:
        raise BenchError(f"load generator output cut short ({len(out)} bytes, exit {proc.returncode}):\n{err[-3000:]}") from exc


def workers(stack: Stack) -> list[int]:
    return [pid for pid, role, _ in stack.gateway_processes() if role in ("worker", "main")]


def gateway_spec(stack: Stack, **kw: Any) -> dict[str, Any]:
    return {"url": stack.gateway_url, "headers": {"Authorization": f"Bearer sk-{stack.token}"}, "warmup": 0, **kw}


def soak(stack: Stack, total: int, concurrency: int) -> tuple[list[str], dict[str, Any]]:
    """RSS of every worker sampled across `total` requests (half of them streams)."""
    pids = workers(stack)
    idle = {p: rss_mib(p) for p in pids}
    print(f"soak: {total} requests at c={concurrency} (every other one a stream); idle RSS "
          + ", ".join(f"{p}: {r:.1f} MiB" for p, r in idle.items()), flush=True)  # fmt: skip
    spec = gateway_spec(stack, stream="mix", concurrency=concurrency, requests=total, duration=total / 50 + 60,
                        timeout=30, rss_pids=pids, rss_every=1.0)  # fmt: skip
    m = run_loadgen(spec)
    samples = m["rss_samples"]
    warm = max(1000, total // 20)  # "start" = the first sample after 5% of the requests (warm caches, pools)
    start = next((s for s in samples if s["done"] >= warm), samples[-1])
    lines = [
        f"{m['ok']} of {m['sent']} requests answered and complete, {m['errors']} errors, {m['rps']:.0f} req/s, "
        f"c={concurrency}, non-stream and stream alternating. RSS sampled every second; start = the first sample "
        f"after {warm} requests.",
        "",
        "| worker | idle MiB | start MiB | end MiB | max MiB | end vs start | max vs start |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    worst = 0.0
    biggest = 0.0
    for pid in pids:
        key = str(pid)
        s0, s1 = start["rss"][key], samples[-1]["rss"][key]
        peak = max(s["rss"][key] for s in samples if s["done"] >= start["done"])
        change, peak_change = (s1 - s0) / s0 * 100, (peak - s0) / s0 * 100
        worst = max(worst, abs(change), peak_change)
        biggest = max(biggest, peak)
        lines.append(
            f"| {pid} | {idle[pid]:.1f} | {s0:.1f} | {s1:.1f} | {peak:.1f} | {change:+.1f}% | {peak_change:+.1f}% |"
        )
    step = max(1, len(samples) // 10)
    lines += ["", "RSS (MiB) along the run, requests done: " + "; ".join(
        f"{s['done']}: " + "/".join(f"{v:.1f}" for v in s["rss"].values()) for s in samples[::step])]  # fmt: skip
    lines += ["", f"Target: RSS per worker <= 150 MB and flat (+-10%) -> largest {biggest:.1f} MiB, largest change "
              f"{worst:.1f}% -> {'met' if biggest <= 150 and worst <= 10 else 'MISSED'}"]  # fmt: skip
    return lines, m


def big_stream(stack: Stack, direct_url: str, megabytes: int, chunks: int) -> tuple[list[str], dict[str, Any]]:
    """One huge streamed answer (nginx serves a generated SSE file) through the gateway; worker RSS."""
    spec = {"url": direct_url, "headers": {"Authorization": "Bearer sk-upstream"}, "warmup": 0, "stream": True,
            "concurrency": 1, "requests": 1, "duration": 600, "timeout": 600}  # fmt: skip
    d = run_loadgen(spec)
    print(
        f"big stream direct: {d['body_bytes'] / 1e6:.1f} MB in {d['elapsed_s']:.2f} s, errors {d['errors']}", flush=True
    )
    pids = workers(stack)
    before = {p: rss_mib(p) for p in pids}
    m = run_loadgen(gateway_spec(stack, stream=True, stream_model="bench-big", concurrency=1, requests=1,
                                 duration=600, timeout=600, rss_pids=pids, rss_every=0.05))  # fmt: skip
    time.sleep(1.0)
    after = {p: rss_mib(p) for p in pids}
    peaks = {p: max(s["rss"][str(p)] for s in m["rss_samples"]) for p in pids}
    growth = max(peaks[p] - before[p] for p in pids)
    mb = m["body_bytes"] / 1e6
    print(f"big stream gateway: {mb:.1f} MB in {m['elapsed_s']:.2f} s, errors {m['errors']} {m['error_samples']}; "
          f"worker RSS growth {growth:.1f} MiB", flush=True)  # fmt: skip
    lines = [
        f"A {megabytes} MB chat stream ({chunks} content chunks of ~230 bytes, then finish, usage and [DONE]) "
        "served by nginx from a file generated at start, read by one client as fast as it can.",
        "",
        "| path | MB received | seconds | MB/s | complete |",
        "|---|---:|---:|---:|---|",
        f"| direct (nginx) | {d['body_bytes'] / 1e6:.1f} | {d['elapsed_s']:.2f} | {d['body_bytes'] / 1e6 / d['elapsed_s']:.0f} | {d['errors'] == 0} |",
        f"| gateway | {mb:.1f} | {m['elapsed_s']:.2f} | {mb / m['elapsed_s']:.1f} | {m['errors'] == 0} |",
        "",
        "| worker | RSS before MiB | max during | 1 s after |",
        "|---|---:|---:|---:|",
        *[f"| {p} | {before[p]:.1f} | {peaks[p]:.1f} | {after[p]:.1f} |" for p in pids],
        "",
        f"Target: the worker grows by less than 10 MB -> {growth:.1f} MiB -> {'met' if growth < 10 and m['errors'] == 0 else 'MISSED'}",
    ]
    if m["error_samples"]:
        lines.append(f"Errors: {m['error_samples']}")
    return lines, m


def slow_streams(stack: Stack, direct_url: str, count: int, scenario: str) -> tuple[list[str], dict[str, Any]]:
    """`count` slow streams at once (the fake provider's slow= scenario), directly and through the gateway."""
    rows, ends, result = [], [], {}
    for name, url, headers in (("direct (fake provider)", direct_url, "Bearer sk-upstream"),
                               ("gateway", stack.gateway_url, f"Bearer sk-{stack.token}")):  # fmt: skip
        spec = {"url": url, "headers": {"Authorization": headers}, "warmup": 0, "stream": True, "stream_model": "bench-slow",
                "concurrency": count, "requests": count, "duration": 600, "timeout": 300,
                "rss_pids": workers(stack) if name == "gateway" else [], "rss_every": 0.5}  # fmt: skip
        m = run_loadgen(spec, limit=700)
        rss = max((max(s["rss"].values()) for s in m["rss_samples"] if s["rss"]), default=None)
        where = Counter({k: v for k, v in m["gap_positions"].items() if v})
        ends.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in where.most_common()))
        print(f"slow streams {name}: {m['ok']}/{m['sent']} ok, longest gap {m['gap_max']:.0f} ms, TTFB max "
              f"{m['ttfb_max']:.0f} ms, errors {m['errors']} {m['error_samples'][:2]}", flush=True)  # fmt: skip
        rows.append(f"| {name} | {m['ok']}/{m['sent']} | {m['gap_p50']:.0f} | {m['gap_p99']:.0f} | {m['gap_max']:.0f} | "
                    f"{m['ttfb_p50']:.0f} | {m['ttfb_max']:.0f} | {m['p50'] / 1000:.2f} | {m['max'] / 1000:.2f} | "
                    f"{'-' if rss is None else f'{rss:.0f}'} |" if m["n"] else f"| {name} | 0/{m['sent']} | - | - | - | - | - | - | - | - |")  # fmt: skip
        result = m
    m = result
    ok = m["n"] == count and m["gap_max"] is not None and m["gap_max"] <= 1000
    return [
        f"{count} streams started at once, each `/s/{scenario}` on the fake provider (one event every "
        f"{scenario.split('slow=')[1].split(',')[0]} ms). Gap = the longest wait of a stream between two body "
        "reads; the columns are over the streams' longest gaps.",
        "",
        "| path | complete | gap p50 ms | gap p99 ms | gap max ms | TTFB p50 ms | TTFB max ms | total p50 s | total max s | worker RSS max MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Where in the stream the longest gap ended (start = first 20% of its time, end = last 20%): " + "; ".join(ends),
        "",
        f"Target: no stream starves for more than 1 s between two chunks -> "
        f"{'met' if ok else 'MISSED'} (gateway longest gap {m['gap_max'] or 0:.0f} ms; errors {m['errors']})",
        *([f"Errors: {m['error_samples']}"] if m["error_samples"] else []),
    ], m


def ensure_py_spy() -> Path:
    exe = TOOLS_VENV / "bin" / "py-spy"
    if not exe.exists():
        print(f"bench: installing py-spy into {TOOLS_VENV}", flush=True)
        for cmd in (
            [sys.executable, "-m", "venv", str(TOOLS_VENV)],
            [str(TOOLS_VENV / "bin" / "pip"), "install", "-q", "py-spy"],
        ):
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if done.returncode:
                raise BenchError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return exe


def parse_raw(raw: str) -> dict[str, list[tuple[list[str], int]]]:
    """py-spy's collapsed stacks recorded with --threads: thread label -> [(frames, samples)]."""
    threads: dict[str, list[tuple[list[str], int]]] = {}
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        thread, *frames = stack.split(";")
        frames = [f.rsplit(":", 1)[0] + ")" if ":" in f else f for f in frames]  # drop line numbers
        threads.setdefault(thread, []).append((frames, int(count)))
    return threads


def top_functions(
    stacks: list[tuple[list[str], int]], n: int = 10
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(samples, top n by own time, top by inclusive time without the loop's and server's entry frames)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for frames, count in stacks:
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    skip = ("<module>", "Runner.run (asyncio", "spawn_main", "_main (multi", "BaseProcess.", "Server.run (uvicorn",
            "asyncio_run (uvicorn", "subprocess_started", "Process.target", "run_asgi (uvicorn", "ProxyHeadersMiddleware")  # fmt: skip
    inclusive = [(f, c) for f, c in total.most_common() if not f.startswith(skip)][:n]
    return sum(c for _, c in stacks), own.most_common(n), inclusive


def _spy(exe: Path, pid: int, seconds: int, fmt: str, dest: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [
        str(exe),
        "record",
        "-d",
        str(seconds),
        "-r",
        "100",
        "--threads",
        "-f",
        fmt,
        "-o",
        str(dest),
        "--pid",
        str(pid),
    ]
    return subprocess.Popen(
        [*cmd, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _top_table(title: str, pairs: list[tuple[str, int]], samples: int) -> list[str]:
    return [
        title,
        "",
        "| % | function (file) |",
        "|---:|---|",
        *[f"| {c / samples * 100:.1f} | `{f}` |" for f, c in pairs],
        "",
    ]


def profile(
    stack: Stack, seconds: int, out_svg: Path, concurrency: int = 32, stream: bool = False
) -> tuple[list[str], dict[str, Any]]:
    """py-spy on the busiest gateway worker under load (non-stream, c=32 by default), three phases of `seconds`.

    1. Wall clock, raw stacks; meanwhile each thread's time on a CPU / waiting for a CPU / blocked
       is read from /proc/<pid>/task/*/schedstat (py-spy counts a thread blocked in a pipe read or
       a lock wait as active).
    2. --gil: only samples holding the GIL, i.e. where the Python CPU time goes.
    3. A flame graph (wall clock) for the eye.
    """
    exe = ensure_py_spy()
    pids = workers(stack)
    spec = gateway_spec(stack, stream=stream, concurrency=concurrency, warmup=2, duration=3 * seconds + 10, timeout=30)
    load = subprocess.Popen([sys.executable, str(BENCH / "loadgen.py"), json.dumps(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    wall_path, gil_path = out_svg.with_suffix(".txt"), out_svg.with_name(out_svg.stem + "-gil.txt")
    spies: list[subprocess.Popen[str]] = []
    try:
        time.sleep(2)
        cpu0 = {p: cpu_seconds(p) for p in pids}
        time.sleep(1)
        shares = {p: cpu_seconds(p) - cpu0[p] for p in pids}
        pid = max(pids, key=lambda p: shares[p])  # the keep-alive connections may all sit on one worker
        before, t0 = thread_cpu_seconds(pid), time.monotonic()
        for fmt, dest, extra in (("raw", wall_path, ()), ("raw", gil_path, ("--gil",)), ("flamegraph", out_svg, ())):
            spies.append(_spy(exe, pid, seconds, fmt, dest, *extra))
            spies[-1].wait(timeout=seconds + 60)
            if fmt == "raw" and not extra:
                after, wall = thread_cpu_seconds(pid), time.monotonic() - t0
        out, _ = load.communicate(timeout=seconds + 60)
    finally:
        for proc in [load, *spies]:
            stop_group(proc, grace=2.0)
    m = json.loads(out.splitlines()[-1]) if out.strip() else {"rps": 0, "errors": -1, "sent": 0, "ok": 0}
    threads = parse_raw(wall_path.read_text() if wall_path.exists() else "")
    gil = parse_raw(gil_path.read_text() if gil_path.exists() else "")
    if not threads or not gil:
        raise BenchError("py-spy recorded nothing")
    all_samples = sum(c for stacks in threads.values() for _, c in stacks)
    rows = []
    for tid, (name, run, queued) in after.items():
        run, queued = run - before.get(tid, ("", 0.0, 0.0))[1], queued - before.get(tid, ("", 0.0, 0.0))[2]
        label = next((t for t in threads if t.startswith(f"thread ({tid})")), None)
        samples = sum(c for _, c in threads[label]) if label else 0
        if run > 0.005 or samples:
            rows.append(f"| {label or name} | {run / wall:.0%} | {queued / wall:.0%} | {max(0.0, 1 - (run + queued) / wall):.0%} | "
                        f"{samples / all_samples:.0%} |")  # fmt: skip
    main = next(t for t in threads if t.endswith("MainThread"))
    samples, own, inclusive = top_functions(threads[main])
    gil_samples, gil_own, gil_incl = top_functions([s for stacks in gil.values() for s in stacks])
    main_tid = int(main.split("(")[1].split(")")[0])
    main_cpu = after[main_tid][1] - before[main_tid][1]
    share = shares[pid] / (sum(shares.values()) or 1.0)
    per_req = main_cpu / (m["rps"] * wall * share) * 1e6 if m["rps"] else 0.0
    lines = [
        f"py-spy (100 Hz) on a gateway worker while the load generator kept {concurrency} {'stream' if stream else 'non-stream'} requests in "
        f"flight ({m['rps']:.0f} req/s with py-spy attached; {m['errors']} errors). Profiled: the busiest worker, {pid} "
        f"(CPU over 1 s before: "
        + ", ".join(f"{p}: {c:.2f} s" for p, c in shares.items())
        + f"). Files: `{wall_path.name}` "
        f"(wall clock), `{gil_path.name}` (--gil), `{out_svg.name}` (flame graph, wall clock).",
        "",
        f"Phase 1 ({seconds} s, wall clock): where the threads of worker {pid} spent the time (from schedstat), "
        "and their share of py-spy's samples:",
        "",
        "| thread | on a CPU | waiting for a CPU | blocked / idle | py-spy samples |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"The event loop (MainThread) was on a CPU {main_cpu:.2f} s of {wall:.1f} s: about {per_req:.0f} us per request "
        f"(assuming this worker served {share:.0%} of the requests, its share of the CPU before).",
        "",
        *_top_table(
            f"MainThread, top 10 by own time, wall clock ({samples} samples; includes time blocked in C calls):",
            own,
            samples,
        ),
        *_top_table(
            "MainThread, top 10 by inclusive time, wall clock (the loop's and uvicorn's entry frames left out):",
            inclusive,
            samples,
        ),
        *_top_table(
            f"Phase 2 ({seconds} s, --gil: Python CPU only), top 10 by own time ({gil_samples} samples):",
            gil_own,
            gil_samples,
        ),
        *_top_table("Phase 2, top 10 by inclusive time:", gil_incl, gil_samples),
    ]
    print("\n".join(lines), flush=True)
    return lines, m
