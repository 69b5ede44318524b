"""Gateway benchmark (issue 4): direct (nginx) vs the gateway vs LiteLLM proxy, interleaved.

    .venv/bin/python bench/run.py [--quick] [--pg]          # the comparison (about 25 min; --quick: 4 min)
    .venv/bin/python bench/run.py --soak [N]                # RSS per worker across N requests (100,000)
    .venv/bin/python bench/run.py --big-stream [MB]         # a 100 MB stream through the gateway
    .venv/bin/python bench/run.py --slow-streams [N]        # 1,000 concurrent slow streams
    .venv/bin/python bench/run.py --profile [SECONDS]       # py-spy on a gateway worker at c=32

Starts nginx with fixed bodies recorded from the fake provider, the fake provider, a fresh database
(SQLite, or PostgreSQL + Redis with --pg), the gateway with the Procfile's web command, and (for
the comparison) LiteLLM proxy in bench/.venv-litellm; measures with bench/loadgen.py in its own
process; prints the tables and writes its section of bench/RESULTS.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import modes  # noqa: E402
from contestants import NGINX_MODELS, LiteLLM, Nginx, ensure_debian_package, record_bodies, write_big_sse  # noqa: E402
from procstat import rss_mib, tree  # noqa: E402
from report import (  # noqa: E402
    RATIO_COLUMNS,
    Measurement,
    cpu_speed,
    cpu_split,
    header_lines,
    loadavg,
    machine_info,
    ratio_rows,
    render_markdown_table,
    render_text,
    rounds_summary,
    summarise,
    table_rows,
    target_lines,
    update_results,
)  # fmt: skip
from servers import BenchError, Stack, tail  # noqa: E402

BENCH = Path(__file__).resolve().parent
REQUEST_TIMEOUT = 30.0
#: Logged requests in the database before a run: a production gateway holds months of them
#: (10 req/s for a day is 864,000), and each request's index writes cost more on a bigger database.
PREFILL = 1_000_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds per run (after the warm-up)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each measured window")
    p.add_argument("--concurrency", default="1,8,32,64", help="comma-separated in-flight request counts")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per case (median reported)")
    p.add_argument("--quick", action="store_true", help="3 s per run, 1 s warm-up, 2 rounds")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gateway and LiteLLM workers (cores)")
    p.add_argument("--no-litellm", action="store_true", help="compare direct and gateway only")
    p.add_argument("--litellm-spec", default="litellm[proxy]", help="what pip installs into bench/.venv-litellm")
    p.add_argument("--soak", type=int, nargs="?", const=100_000, metavar="N", help="mode: RSS across N requests")
    p.add_argument("--soak-concurrency", type=int, default=32)
    p.add_argument("--big-stream", type=int, nargs="?", const=100, metavar="MB", help="mode: one MB-sized stream")
    p.add_argument("--slow-streams", type=int, nargs="?", const=1000, metavar="N", help="mode: N slow streams at once")
    p.add_argument("--slow-scenario", default="words=30,slow=250", help="fake provider scenario of the slow streams")
    p.add_argument(
        "--profile", type=int, nargs="?", const=10, metavar="S", help="mode: py-spy a worker for S s at c=32"
    )
    p.add_argument(
        "--web", default="", metavar="CMD", help="gateway web command instead of the Procfile's (to compare servers)"
    )
    p.add_argument("--profile-concurrency", type=int, default=32, help="requests in flight while profiling")
    p.add_argument("--profile-stream", action="store_true", help="profile under stream load")
    p.add_argument("--load", choices=("wrk", "aiohttp"), default="wrk",
                   help="load generator of the non-stream cases at c > 1 (c=1 and streams: bench/loadgen.py's aiohttp client)")
    p.add_argument("--pg", action="store_true", help="PostgreSQL + Redis instead of SQLite")
    p.add_argument("--prefill", type=int, default=PREFILL, metavar="N",
                   help="logged requests the database holds before the run (a production-sized history)")
    p.add_argument("--pg-admin-dsn", default="postgres://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/5", help="Redis db for --pg (flushed!)")
    p.add_argument("--output", default=str(BENCH / "RESULTS.md"), help="Markdown file to update ('' = none)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (database, logs)")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 3.0, 1.0, 2
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.compare = all(getattr(args, m) is None for m in ("soak", "big_stream", "slow_streams", "profile"))
    if args.rounds < 1 or args.duration <= 0 or not args.concurrency or min(args.concurrency) < 1:
        p.error("need --rounds >= 1, --duration > 0 and concurrencies >= 1")
    return args


def load_for(load: str, stream: bool, concurrency: int) -> str:
    """wrk where throughput is judged (non-stream, c > 1); the aiohttp client where latency is:
    at c=1 it is not the bottleneck (the requests go one at a time), and it times each request
    as sent, where wrk corrects its histogram for coordinated omission (see bench/README.md).
    Streams need the client's first-byte and gap timing."""
    return load if not stream and concurrency > 1 else "aiohttp"


class Bench:
    """Everything one run started, and what it measured through the gateway (for the billing check)."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.stack = Stack(tmp, args.workers, args.pg, args.pg_admin_dsn, args.redis, args.web)
        self.nginx = Nginx()
        self.litellm = LiteLLM(tmp, args.workers, args.litellm_spec) if args.compare and not args.no_litellm else None
        self.gateway_runs: list[dict[str, Any]] = []
        self.big_chunks = 0

    def start(self) -> None:
        stack, args = self.stack, self.args
        if args.compare and args.load == "wrk":
            ensure_debian_package("wrk", "wrk")
        stack.start_fake()
        assert stack.fake is not None
        record_bodies(stack.fake.base_url, self.nginx.dir)
        if args.big_stream:
            self.big_chunks = write_big_sse(self.nginx.dir, args.big_stream)
        self.nginx.start()
        upstreams = {model: self.nginx.base_url + prefix for model, prefix in NGINX_MODELS.items()}
        upstreams["bench-slow"] = f"{stack.fake.base_url}/s/{args.slow_scenario}"
        stack.setup_database(upstreams)
        if args.prefill:
            started = time.monotonic()
            stack.prefill(args.prefill)
            print(f"bench: database prefilled with {args.prefill:,} logged requests in {time.monotonic() - started:.0f} s", flush=True)
        stack.start_gateway()
        print(
            f"bench: nginx {self.nginx.base_url}, fake provider {stack.fake.base_url}, gateway {stack.gateway_url}",
            flush=True,
        )
        if self.litellm is not None:
            self.litellm.start(self.nginx)
            print(f"bench: LiteLLM {self.litellm.url}", flush=True)

    def close(self) -> None:
        for step in (self.litellm.stop if self.litellm else None, self.stack.close, self.nginx.stop):
            if step is not None:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 -- cleanup must go on
                    print(f"cleanup step failed: {exc!r}", file=sys.stderr)

    def target(self, name: str, stream: bool) -> tuple[str, str, int]:
        """(url, Authorization header, root pid) of a contestant."""
        if name == "direct":
            assert self.nginx.proc is not None
            return self.nginx.url("bench-sse" if stream else "bench-json"), "Bearer sk-upstream", self.nginx.proc.pid
        if name == "gateway":
            assert self.stack.gateway is not None
            return self.stack.gateway_url, f"Bearer sk-{self.stack.token}", self.stack.gateway.pid
        assert self.litellm is not None and self.litellm.proc is not None
        return self.litellm.url, f"Bearer {self.litellm.key}", self.litellm.proc.pid

    def compare(self) -> list[Measurement]:
        args = self.args
        names = ["direct", "gateway"] + (["litellm"] if self.litellm else [])
        groups: dict[str, dict[str, object]] = {n: {"tree": self.target(n, False)[2]} for n in names}
        if args.pg:  # the database server's share: our database's backends, and Redis
            groups["postgres"] = {"match": f" {self.stack.dbname} "}
            groups["redis"] = {"match": "redis-server"}
        results: list[Measurement] = []
        for stream in (False, True):
            for concurrency in args.concurrency:
                case = f"{'stream' if stream else 'non-stream'} c={concurrency}"
                for rnd in range(1, args.rounds + 1):
                    for name in names:
                        url, auth, root = self.target(name, stream)
                        spec = {"url": url, "stream": stream, "concurrency": concurrency, "warmup": args.warmup,
                                "duration": args.duration, "timeout": REQUEST_TIMEOUT, "cpu_groups": groups,
                                "headers": {"Authorization": auth}, "load": load_for(args.load, stream, concurrency)}  # fmt: skip
                        m = modes.run_loadgen(spec)
                        m.update(
                            case=case,
                            target=name,
                            round=rnd,
                            workers=args.workers,
                            rss_max=max(rss_mib(p) for p in tree(root)),
                        )
                        results.append(m)
                        if name == "gateway":
                            self.gateway_runs.append(m)
                        ttfb = f" ttfb {m['ttfb_p50']:.2f}" if m["ttfb_p50"] is not None else ""
                        p50 = f"{m['p50']:.2f}" if m["p50"] is not None else "-"
                        cpu = m["cpu_s"][name] / max(1, m["n"]) * 1000
                        print(f"  {case:<15} {name:<8} round {rnd}: {m['rps']:6.0f} req/s  p50 {p50} ms{ttfb}  errors "
                              f"{m['errors']}  CPU {cpu:.3f} ms/req split {cpu_split(m, name)}  RSS {m['rss_max']:.0f} MiB  client "
                              f"{m['client_cores']:.2f} other {m['other_cores']:.2f} steal {m['steal_cores']:.2f} cores", flush=True)  # fmt: skip
                        for sample in m["error_samples"]:
                            print(f"    error sample: {sample}", flush=True)
                        self.check_alive()
        return results

    def check_alive(self) -> None:
        for name, proc in (("gateway", self.stack.gateway), ("LiteLLM", self.litellm and self.litellm.proc),
                           ("nginx", self.nginx.proc)):  # fmt: skip
            if proc is not None and proc.poll() is not None:
                raise BenchError(f"{name} exited with {proc.returncode} during the run")

    def billing_check(self) -> str:
        """Stop the gateway; every complete 200 it answered must have its consume log row. Requests
        wrk left in flight at its deadline may or may not have reached the gateway: each may add a row."""
        stack = self.stack
        sent = sum(m["sent"] for m in self.gateway_runs) + stack.probe_ok
        ok = sum(m["ok"] for m in self.gateway_runs) + stack.probe_ok
        abandoned = sum(m.get("abandoned", 0) for m in self.gateway_runs)
        running = stack.count_logs()
        stack.stop_gateway()
        final = stack.count_logs(settle=5)
        verdict = "match" if ok <= final[1] <= ok + abandoned else "MISMATCH"
        left = f", {abandoned} left in flight by wrk at its deadline (each may add a row)" if abandoned else ""
        return (f"Billing check: {sent} requests sent to the gateway (readiness probes included), {ok} answered 200 and "
                f"complete{left}; consume log rows: {final[1]} ({running[1]} before the gateway stopped) -> {verdict}")  # fmt: skip


def comparison_section(bench: Bench, results: list[Measurement], notes: list[str]) -> list[str]:
    summary = summarise(results)
    columns, rows = table_rows(summary, bench.args.pg)
    ratios = ratio_rows(summary)
    targets = target_lines(summary)
    print("\n" + render_text(columns, rows))
    if ratios:
        print(
            "\ngateway / LiteLLM (req/s: higher is better; the others: lower is better)\n"
            + render_text(RATIO_COLUMNS, ratios, left=1)
        )
    print("\nTargets:\n" + "\n".join("  " + t for t in targets))
    return [
        render_markdown_table(columns, rows), "",
        "Each row is the median round by req/s; `errors` sums all rounds. Times in ms (non-stream at c > 1 with wrk: its "
        "histogram, corrected for coordinated omission). `+` columns: minus direct (the latency the proxy adds). `CPU ms/req`: user+system CPU of the contestant's whole process tree per "
        "request (nginx master+worker; uvicorn supervisor+workers; LiteLLM's). `CPU split %`: each worker's share of "
        "that CPU (the load generator's keep-alive connections land on whichever worker accepts first). `RSS MiB`: its largest process, max "
        "over rounds. `client cores`: the load generator's CPU (1.00 = it is the bottleneck). `other cores`: "
        "everything else on the machine (well above 0 = a disturbed round). `steal cores`: CPU the hypervisor gave "
        "to other guests while this VM wanted it (on a shared VM; it slows every contestant in that round).", "",
        *(["gateway / LiteLLM (req/s: higher is better; the others: lower is better):", "",
           render_markdown_table(RATIO_COLUMNS, ratios, left=1), ""] if ratios else []),
        "Targets (issue 4) judged from this run:", "", *[f"- {t}" for t in targets], "",
        "Requests/s of every round, in the order run:", "", *[f"- {line}" for line in rounds_summary(results)], "",
        *[f"- {note}" for note in notes],
    ]  # fmt: skip


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _raise_budget(signum: int, frame: FrameType | None) -> None:
    raise BenchError("the whole run exceeded its time budget")


def budget(args: argparse.Namespace) -> int:
    seconds = 900  # start-up (LiteLLM's first install included) and teardown
    if args.compare:
        seconds += len(args.concurrency) * 2 * args.rounds * 3 * (args.warmup + args.duration + 5)
    seconds += (args.soak or 0) / 50 + (1300 if args.big_stream else 0) + (1500 if args.slow_streams else 0)
    return int(seconds + (300 if args.profile else 0))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGALRM, _raise_budget)
    signal.alarm(budget(args))
    tmp = Path(tempfile.mkdtemp(prefix="oneapi-bench-"))
    bench = Bench(args, tmp)
    db = "pg" if args.pg else "sqlite"
    print(f"bench: {'PostgreSQL + Redis' if args.pg else 'SQLite'}, {args.workers} workers; temp dir {tmp}", flush=True)
    load_start, speed_start = loadavg(), cpu_speed()
    print(f"bench: CPU speed check (a fixed Python loop, fastest-slowest of 5): {speed_start}", flush=True)
    failed = True
    try:
        bench.start()
        meta = machine_info()
        meta.update(command=shlex.join([".venv/bin/python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
                    loadavg_start=load_start, speed_start=speed_start, others=f"nginx {bench.nginx.version()}"
                    + (f"; LiteLLM {bench.litellm.version()} (--num_workers {args.workers})" if bench.litellm else ""))  # fmt: skip
        meta["setup"] = (f"{'PostgreSQL + Redis' if args.pg else 'SQLite'}; gateway `{shlex.join(bench.stack.command)}` "
                         f"with WEB_CONCURRENCY={args.workers}")  # fmt: skip
        sections: list[tuple[str, str, list[str]]] = []
        if args.compare:
            meta["setup"] += (f"; {args.duration:g} s per run after {args.warmup:g} s warm-up, {args.rounds} rounds "
                              f"interleaved, concurrency {','.join(map(str, args.concurrency))}; load: "
                              f"{'wrk (non-stream, c > 1), aiohttp client (c=1, stream)' if args.load == 'wrk' else 'aiohttp client'}")  # fmt: skip
            results = bench.compare()
            rss = [f"{pid} {role} {r:.0f} MiB" for pid, role, r in bench.stack.gateway_processes()]
            notes = ["Gateway RSS at the end: " + ", ".join(rss)]
            kind = "quick" if args.quick else "standard"
            if args.concurrency != [1, 8, 32, 64]:  # a partial run gets its own section
                kind += "-c" + "-".join(map(str, args.concurrency))
            sections.append(
                (f"main-{db}-{kind}", f"Comparison ({kind}, {db})", comparison_section(bench, results, notes))
            )
        if args.soak:
            lines, m = modes.soak(bench.stack, args.soak, args.soak_concurrency)
            bench.gateway_runs.append(m)
            sections.append((f"soak-{db}", f"Soak: RSS across {args.soak} requests ({db})", lines))
        if args.big_stream:
            lines, m = modes.big_stream(bench.stack, bench.nginx.url("bench-big"), args.big_stream, bench.big_chunks)
            bench.gateway_runs.append(m)
            sections.append((f"big-stream-{db}", f"Big stream: {args.big_stream} MB ({db})", lines))
        if args.slow_streams:
            assert bench.stack.fake is not None
            direct = f"{bench.stack.fake.base_url}/s/{args.slow_scenario}/v1/chat/completions"
            lines, m = modes.slow_streams(bench.stack, direct, args.slow_streams, args.slow_scenario)
            bench.gateway_runs.append(m)
            sections.append((f"slow-streams-{db}", f"Slow streams: {args.slow_streams} at once ({db})", lines))
        if args.profile:
            lines, m = modes.profile(
                bench.stack, args.profile, BENCH / "profile.svg", args.profile_concurrency, args.profile_stream
            )
            bench.gateway_runs.append(m)
            load = f"c={args.profile_concurrency}{', stream' if args.profile_stream else ''}"
            sections.append((f"profile-{db}", f"Profile of a gateway worker at {load} ({db})", lines))
        bill = bench.billing_check()
        print(bill, flush=True)
        meta["loadavg_end"], meta["speed_end"] = loadavg(), cpu_speed()
        print(f"bench: CPU speed check at the end: {meta['speed_end']}", flush=True)
        for key, title, body in sections:
            if args.output:
                update_results(Path(args.output), key, title, [*header_lines(meta), "", *body, "", f"- {bill}"])
        if args.output:
            print(f"updated {args.output}")
        failed = False
        return 0
    except BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        print(f"--- tail of {bench.stack.log_path} ---\n{tail(bench.stack.log_path)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted, cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        bench.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if failed or args.keep_tmp:
            print(f"bench: temp dir kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
