"""Gateway overhead benchmark: the fake provider called directly vs through the gateway.

    .venv/bin/python bench/run.py [--duration 10] [--concurrency 1,32] [--workers N] [--pg] [--rounds 3]

Starts the fake provider, a fresh database (SQLite, or PostgreSQL + Redis with --pg) and the gateway
under uvicorn with production settings; then, for {non-stream, stream} x each concurrency, runs
the load generator (bench/loadgen.py, its own process) against both targets, interleaved, and prints
the median round of each. Writes the same table to bench/RESULTS.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Measurement, loadavg, machine_info, render_markdown, render_text, table_rows  # noqa: E402
from servers import BenchError, Stack, stop_group, tail  # noqa: E402

BENCH = Path(__file__).resolve().parent
WARMUP = 2.0
REQUEST_TIMEOUT = 30.0
_loadgen: subprocess.Popen[str] | None = None  # the one running now, for cleanup


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run (after 2 s warm-up)")
    p.add_argument("--concurrency", default="1,32", help="comma-separated in-flight request counts")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="uvicorn workers (default: cores)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per case and target (>= 2; median reported)")
    p.add_argument("--pg", action="store_true", help="PostgreSQL + Redis instead of SQLite")
    p.add_argument("--pg-admin-dsn", default="postgres://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/5", help="Redis db for --pg (flushed!)")
    p.add_argument("--output", default=str(BENCH / "RESULTS.md"), help="Markdown file to write ('' = none)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (database, gateway.log)")
    args = p.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if args.rounds < 2 or args.duration <= 0 or not args.concurrency or min(args.concurrency) < 1:
        p.error("need --rounds >= 2, --duration > 0 and concurrencies >= 1")
    return args


def run_loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """Run bench/loadgen.py in its own process (and process group); bounded in time."""
    global _loadgen
    limit = spec["warmup"] + spec["duration"] + spec["timeout"] + 30
    cmd = [sys.executable, str(BENCH / "loadgen.py"), json.dumps(spec)]
    _loadgen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = _loadgen.communicate(timeout=limit)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"load generator still running after {limit:.0f}s") from exc
    finally:
        stop_group(_loadgen, grace=2.0)
        _loadgen = None
    if not out.strip():
        raise BenchError(f"load generator failed:\n{err[-3000:]}")
    return dict(json.loads(out.splitlines()[-1]))


def measure_all(stack: Stack, args: argparse.Namespace) -> list[Measurement]:
    assert stack.fake is not None and stack.gateway is not None
    results: list[Measurement] = []
    groups: dict[str, dict[str, object]] = {
        "gateway": {"tree": stack.gateway.pid},
        "fake": {"tree": stack.fake.proc.pid},
    }
    if args.pg:  # the database server's share: our database's backends, and Redis
        groups["postgres"] = {"match": f" {stack.dbname} "}
        groups["redis"] = {"match": "redis-server"}
    auth = {"direct": "Bearer sk-upstream", "gateway": f"Bearer sk-{stack.token}"}
    urls = {"direct": stack.direct_url, "gateway": stack.gateway_url}
    shown_log = False
    for stream in (False, True):
        for concurrency in args.concurrency:
            case = f"{'stream' if stream else 'non-stream'} c={concurrency}"
            for rnd in range(1, args.rounds + 1):
                for target in ("direct", "gateway"):
                    spec = {
                        "url": urls[target], "stream": stream, "concurrency": concurrency, "warmup": WARMUP,
                        "duration": args.duration, "timeout": REQUEST_TIMEOUT, "cpu_groups": groups,
                        "headers": {"Authorization": auth[target]},
                    }  # fmt: skip
                    m = run_loadgen(spec)
                    m.update(case=case, target=target, round=rnd, concurrency=concurrency, stream=stream)
                    results.append(m)
                    ttfb = f" ttfb p50 {m['ttfb_p50']:.2f} ms" if m["ttfb_p50"] is not None else ""
                    p50 = f"{m['p50']:.2f}" if m["p50"] is not None else "-"
                    cpu = " ".join(f"{k} {v / max(1, m['n']) * 1000:.3f}" for k, v in m["cpu_s"].items())
                    print(
                        f"  {case:<15} {target:<8} round {rnd}: {m['rps']:6.0f} req/s  p50 {p50} ms{ttfb}"
                        f"  errors {m['errors']}  CPU ms/req: {cpu}  other cores {m['other_cores']:.2f}",
                        flush=True,
                    )
                    for sample in m["error_samples"]:
                        print(f"    error sample: {sample}", flush=True)
                    if stack.gateway.poll() is not None:
                        raise BenchError(f"gateway exited with {stack.gateway.returncode} during the run")
                    if target == "gateway" and m["error_samples"] and not shown_log:
                        shown_log = True
                        print(f"--- tail of {stack.log_path} ---\n{tail(stack.log_path)}\n---", flush=True)
    return results


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _raise_budget(signum: int, frame: FrameType | None) -> None:
    raise BenchError("the whole run exceeded its time budget")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGALRM, _raise_budget)
    per_run = WARMUP + args.duration + REQUEST_TIMEOUT + 30
    signal.alarm(int(len(args.concurrency) * 2 * args.rounds * 2 * per_run + 600))

    tmp = Path(tempfile.mkdtemp(prefix="oneapi-bench-"))
    stack = Stack(tmp, args.workers, args.pg, args.pg_admin_dsn, args.redis)
    db = "PostgreSQL + Redis" if args.pg else "SQLite"
    setup = f"{db}, uvicorn --workers {args.workers} (uvloop, httptools), {args.duration:g} s x {args.rounds} rounds"
    print(f"bench: {setup}; temp dir {tmp}", flush=True)
    load_start = loadavg()
    failed = True
    try:
        stack.start_fake()
        stack.setup_database()
        stack.start_gateway()
        print(f"bench: fake provider {stack.direct_url}, gateway {stack.gateway_url}", flush=True)
        results = measure_all(stack, args)

        processes = stack.gateway_processes()
        logs_running = stack.count_logs()
        stack.stop_gateway()
        logs_final = stack.count_logs(settle=5)
        gw = [m for m in results if m["target"] == "gateway"]
        sent = sum(m["sent"] for m in gw) + stack.probe_ok
        ok = sum(m["ok"] for m in gw) + stack.probe_ok
        notes = [
            "RSS at the end: " + ", ".join(f"{role} {pid}: {rss:.0f} MiB" for pid, role, rss in processes),
            f"Billing check: {sent} requests sent to the gateway (warm-up and readiness probes included), "
            f"{ok} answered 200 and complete; `logs` rows: {logs_final[0]} ({logs_final[1]} consume rows; "
            f"{logs_running[1]} before the gateway stopped)",
        ]
        rows = table_rows(results)
        print()
        print(render_text(rows))
        print()
        for note in notes:
            print(note)
        if logs_final[1] != ok:
            print(f"WARNING: {ok} successful gateway requests but {logs_final[1]} consume log rows")
        meta = machine_info()
        meta.update(
            command=shlex.join([".venv/bin/python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
            setup=setup,
            loadavg_start=load_start,
            loadavg_end=loadavg(),
        )
        if args.output:
            Path(args.output).write_text(render_markdown(rows, results, meta, notes))
            print(f"wrote {args.output}")
        failed = False
        return 0
    except BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        print(f"--- tail of {stack.log_path} ---\n{tail(stack.log_path)}", file=sys.stderr)
        return 1
    except Exception:
        print(f"--- tail of {stack.log_path} ---\n{tail(stack.log_path)}", file=sys.stderr)
        raise
    except KeyboardInterrupt:
        print("bench: interrupted, cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        if _loadgen is not None:
            stop_group(_loadgen, grace=2.0)
        stack.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if failed or args.keep_tmp:
            print(f"bench: temp dir kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
