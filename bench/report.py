"""Turning measurements into tables (plain text for the terminal, Markdown for RESULTS.md).

RESULTS.md is made of sections, one per kind of run (`main sqlite quick`, `soak sqlite`, ...), each
between `<!-- bench:KEY -->` markers: a run replaces its own section and keeps the others.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

Measurement = dict[str, Any]  # loadgen's JSON + case, target, round, concurrency, stream, rss_max
TARGETS = ("direct", "gateway", "litellm")
COLUMNS = [
    "case", "target", "req/s", "p50 ms", "p90 ms", "p99 ms", "TTFB p50", "TTFB p99", "+p50 ms", "+p90 ms",
    "+p99 ms", "+TTFB p50", "errors", "CPU ms/req", "CPU split %", "DB CPU ms/req (pg+redis)", "RSS MiB", "client cores", "other cores",
    "steal cores",
]  # fmt: skip
RATIO_COLUMNS = ["case", "req/s", "p50", "+p50", "+p99", "+TTFB p50", "CPU/req", "RSS"]
PACKAGES = ["Django", "uvicorn", "uvloop", "httptools", "aiohttp", "orjson", "psycopg", "redis", "channels"]


def median_round(rounds: list[Measurement]) -> Measurement:
    """The round with the median requests/s (the lower middle one for an even count)."""
    ordered = sorted(rounds, key=lambda m: m["rps"])
    return ordered[(len(ordered) - 1) // 2]


def _ms(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def cpu_ms(m: Measurement, groups: list[str]) -> float | None:
    """CPU milliseconds per counted request of the named process groups."""
    seconds = [m["cpu_s"][g] for g in groups if g in m["cpu_s"]]
    return sum(seconds) / m["n"] * 1000 if seconds and m["n"] else None


def cpu_split(m: Measurement, target: str, workers: int | None = None) -> str:
    """Each busy process's share of the target's CPU, largest first ("97/3": one worker did it all)."""
    cpus = sorted((c for c in m.get("cpu_by_pid", {}).get(target, {}).values() if c > 0), reverse=True)
    total = sum(cpus)
    cpus = cpus[: workers or m.get("workers", 2)]
    return "/".join(f"{c / total * 100:.0f}" for c in cpus) if total else "-"


def summarise(results: list[Measurement]) -> dict[str, dict[str, dict[str, Any]]]:
    """case -> target -> the median round's figures, the added latencies and the CPU per request."""
    cases: dict[str, dict[str, list[Measurement]]] = {}
    for m in results:
        cases.setdefault(m["case"], {}).setdefault(m["target"], []).append(m)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for case, targets in cases.items():
        direct = median_round(targets["direct"]) if "direct" in targets else None
        for target in TARGETS:
            if target not in targets:
                continue
            m = median_round(targets[target])
            row = dict(m)
            row["errors_all"] = sum(r["errors"] for r in targets[target])
            row["rss_max"] = max(r["rss_max"] for r in targets[target])
            for key in ("p50", "p90", "p99", "ttfb_p50"):
                row["+" + key] = _diff(m[key], direct[key]) if direct is not None and target != "direct" else None
            row["cpu_ms"] = cpu_ms(m, [target])
            row["split"] = cpu_split(m, target)
            pg, redis = cpu_ms(m, ["postgres"]), cpu_ms(m, ["redis"])
            row["db"] = f"{pg:.2f}+{redis:.2f}" if target == "gateway" and pg is not None and redis is not None else "-"
            out.setdefault(case, {})[target] = row
    return out


def table_rows(summary: dict[str, dict[str, dict[str, Any]]], pg: bool) -> tuple[list[str], list[list[str]]]:
    columns = [c for c in COLUMNS if pg or c != "DB CPU ms/req (pg+redis)"]
    rows = []
    for case, targets in summary.items():
        for target, r in targets.items():
            cells = [case, target, f"{r['rps']:.0f}", _ms(r["p50"]), _ms(r["p90"]), _ms(r["p99"]), _ms(r["ttfb_p50"]),
                     _ms(r["ttfb_p99"]), _ms(r["+p50"], True), _ms(r["+p90"], True), _ms(r["+p99"], True),
                     _ms(r["+ttfb_p50"], True), str(r["errors_all"]), _ms(r["cpu_ms"]), r["split"], r["db"],
                     f"{r['rss_max']:.0f}", f"{r['client_cores']:.2f}", f"{r['other_cores']:.2f}",
                     f"{r.get('steal_cores', 0.0):.2f}"]  # fmt: skip
            if not pg:
                del cells[COLUMNS.index("DB CPU ms/req (pg+redis)")]
            rows.append(cells)
    return columns, rows


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def ratio_rows(summary: dict[str, dict[str, dict[str, Any]]]) -> list[list[str]]:
    """gateway / LiteLLM for each case (req/s: higher is better; the others: lower is better)."""
    rows = []
    for case, t in summary.items():
        if "gateway" in t and "litellm" in t:
            g, lt = t["gateway"], t["litellm"]
            rows.append(
                [case] + [_ratio(g[k], lt[k]) for k in ("rps", "p50", "+p50", "+p99", "+ttfb_p50", "cpu_ms", "rss_max")]
            )
    return rows


def check(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def target_lines(summary: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """The issue's targets that this comparison run can judge."""

    def get(case: str, target: str, key: str) -> float | None:
        return summary.get(case, {}).get(target, {}).get(key)

    lines = []
    g, lt = get("non-stream c=32", "gateway", "rps"), get("non-stream c=32", "litellm", "rps")
    ratio = g / lt if g and lt else None
    # LiteLLM's workers share one listening socket, so the load generator's keep-alive connections
    # may all land on one of them (split 100/0) or spread (~50/50): its req/s nearly doubles.
    split = summary.get("non-stream c=32", {}).get("litellm", {}).get("split")
    lines.append(
        f"non-stream throughput at c=32 >= 20x LiteLLM: {_ratio(g, lt)}x -> {check(None if ratio is None else ratio >= 20)}"
        + (f" (LiteLLM's CPU split across its workers in that round: {split})" if split else "")
    )
    p50, p99 = get("non-stream c=1", "gateway", "+p50"), get("non-stream c=1", "gateway", "+p99")
    if p50 is not None and p99 is not None:
        lines.append(
            f"added latency at c=1: p50 {p50:+.2f} ms (<= 1.5) -> {check(p50 <= 1.5)}; p99 {p99:+.2f} ms (<= 5) -> {check(p99 <= 5)}"
        )
    ttfb = get("stream c=1", "gateway", "+ttfb_p50")
    if ttfb is not None:
        lines.append(f"stream TTFB added at c=1 (p50): {ttfb:+.2f} ms (<= 2) -> {check(ttfb <= 2)}")
    cpus = {
        c: t["gateway"]["cpu_ms"] for c, t in summary.items() if "gateway" in t and t["gateway"]["cpu_ms"] is not None
    }
    if cpus:
        worst = max(cpus, key=lambda c: cpus[c])
        lines.append(
            f"server CPU per request <= 1 ms: worst {cpus[worst]:.3f} ms ({worst}) -> {check(cpus[worst] <= 1)}"
        )
    rss = max((t["gateway"]["rss_max"] for t in summary.values() if "gateway" in t), default=None)
    if rss is not None:
        lines.append(
            f"RSS per worker <= 150 MB: largest gateway process {rss:.0f} MiB -> {check(rss <= 150)} (flatness: --soak)"
        )
    return lines


def render_text(columns: list[str], rows: list[list[str]], left: int = 2) -> str:
    widths = (
        [max(len(columns[i]), *(len(r[i]) for r in rows)) for i in range(len(columns))]
        if rows
        else [len(c) for c in columns]
    )

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    header = fmt(columns)
    return "\n".join([header, "-" * len(header), *(fmt(r) for r in rows)])


def render_markdown_table(columns: list[str], rows: list[list[str]], left: int = 2) -> str:
    out = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" if i < left else "---:" for i in range(len(columns))) + "|",
    ]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def rounds_summary(results: list[Measurement]) -> list[str]:
    """`case target: 812 / 845 / 830 req/s` lines, to judge the noise between rounds."""
    grouped: dict[tuple[str, str], list[float]] = {}
    for m in results:
        grouped.setdefault((m["case"], m["target"]), []).append(m["rps"])
    return [f"{case} {target}: " + " / ".join(f"{r:.0f}" for r in rps) for (case, target), rps in grouped.items()]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = "?"
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {cpu_model()}, {int(mem) // 1024} MiB RAM, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(versions),
        "commit": commit or "?",
    }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_speed() -> str:
    """CPU ms of a fixed pure-Python loop: fastest and slowest of 5, with the machine otherwise idle.

    On a shared VM the same code can cost 1.6x more CPU on one day than another (other guests
    competing for caches and memory bandwidth show up in no counter here), so CPU per request is
    comparable across runs only next to this figure.
    """
    times = []
    for _ in range(5):
        start = time.process_time()
        total = 0
        for i in range(1_000_000):
            total += i * i
        times.append((time.process_time() - start) * 1000)
    return f"{min(times):.0f}-{max(times):.0f} ms"


def header_lines(meta: dict[str, str]) -> list[str]:
    return [
        f"- Date: {meta['date']}; command: `{meta['command']}`",
        f"- Machine: {meta['machine']}",
        f"- Python {meta['python']}; {meta['packages']}; {meta.get('others', '')}",
        f"- Git commit: {meta['commit']} (working tree may hold uncommitted changes)",
        f"- Setup: {meta['setup']}",
        f"- Load average at start / end: {meta['loadavg_start']} / {meta['loadavg_end']}",
        f"- CPU speed check (a fixed Python loop, fastest-slowest of 5) at start / end: {meta['speed_start']} / "
        f"{meta['speed_end']}",
    ]


FILE_HEADER = """# Benchmark results

Written by `bench/run.py` (see bench/README.md for how to run it and what each column means). Each
section is replaced by the next run of its kind; the others are kept.
"""


def update_results(path: Path, key: str, title: str, body: list[str]) -> None:
    """Replace (or append) the section `key` of RESULTS.md; a file without sections starts over."""
    start, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    block = "\n".join([start, f"## {title}", "", *body, end])
    old = path.read_text() if path.exists() else ""
    if "<!-- bench:" not in old:
        old = FILE_HEADER
    if start in old:
        new = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, old, flags=re.S)
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new)
