"""Turning measurements into the results table (plain text for the terminal, Markdown for RESULTS.md)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

Measurement = dict[str, Any]  # loadgen's JSON + case, target, round, concurrency, stream

COLUMNS = [
    "case", "target", "req/s", "p50 ms", "p99 ms", "TTFB p50", "TTFB p99",
    "+p50 ms", "+p99 ms", "+TTFB p50", "errors", "CPU ms/req", "DB CPU ms/req", "other cores",
]  # fmt: skip
PACKAGES = ["Django", "uvicorn", "uvloop", "httptools", "aiohttp", "orjson", "psycopg", "redis", "channels"]


def median_round(rounds: list[Measurement]) -> Measurement:
    """The round with the median requests/s (the lower middle one for an even count)."""
    ordered = sorted(rounds, key=lambda m: m["rps"])
    return ordered[(len(ordered) - 1) // 2]


def _ms(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{value:+.2f}" if signed else f"{value:.2f}"
    return text


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _per_request(m: Measurement, groups: list[str]) -> str:
    """CPU milliseconds per counted request of the named process groups ("-" if none measured)."""
    seconds = [m["cpu_s"][g] for g in groups if g in m["cpu_s"]]
    return f"{sum(seconds) / m['n'] * 1000:.3f}" if seconds and m["n"] else "-"


def table_rows(results: list[Measurement]) -> list[list[str]]:
    """One row per (case, target): the median round, plus the gateway's added latency."""
    cases: dict[str, dict[str, list[Measurement]]] = {}
    for m in results:
        cases.setdefault(m["case"], {}).setdefault(m["target"], []).append(m)
    rows: list[list[str]] = []
    for case, targets in cases.items():
        direct = median_round(targets["direct"]) if "direct" in targets else None
        for target in ("direct", "gateway"):
            if target not in targets:
                continue
            m = median_round(targets[target])
            errors = sum(r["errors"] for r in targets[target])
            added: list[str] = ["", "", ""]
            if target == "gateway" and direct is not None:
                added = [
                    _ms(_diff(m["p50"], direct["p50"]), signed=True),
                    _ms(_diff(m["p99"], direct["p99"]), signed=True),
                    _ms(_diff(m["ttfb_p50"], direct["ttfb_p50"]), signed=True),
                ]
            cpu_ms = _per_request(m, ["gateway" if target == "gateway" else "fake"])
            db_ms = _per_request(m, ["postgres", "redis"]) if target == "gateway" else "-"
            rows.append(
                [case, target, f"{m['rps']:.0f}", _ms(m["p50"]), _ms(m["p99"]), _ms(m["ttfb_p50"]),
                 _ms(m["ttfb_p99"]), *added, str(errors), cpu_ms, db_ms, f"{m['other_cores']:.2f}"]
            )  # fmt: skip
    return rows


def render_text(rows: list[list[str]]) -> str:
    widths = [max(len(COLUMNS[i]), *(len(r[i]) for r in rows)) for i in range(len(COLUMNS))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    header = fmt(COLUMNS)
    return "\n".join([header, "-" * len(header), *(fmt(r) for r in rows)])


def render_markdown_table(rows: list[list[str]]) -> str:
    out = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(COLUMNS))) + "|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


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
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(versions),
        "commit": commit or "?",
    }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def render_markdown(rows: list[list[str]], results: list[Measurement], meta: dict[str, str], notes: list[str]) -> str:
    parts = [
        "# Benchmark results",
        "",
        "Written by `bench/run.py` (see bench/README.md for what each column means).",
        "",
        f"- Date: {meta['date']}",
        f"- Command: `{meta['command']}`",
        f"- Machine: {meta['machine']}",
        f"- Python {meta['python']}; {meta['packages']}",
        f"- Git commit: {meta['commit']} (working tree may hold uncommitted changes)",
        f"- Setup: {meta['setup']}",
        f"- Load average at start / end: {meta['loadavg_start']} / {meta['loadavg_end']}",
        "",
        render_markdown_table(rows),
        "",
        "Times in ms; each row is the median round (by req/s); `errors` sums all rounds. `+` columns: gateway minus "
        "direct. `CPU ms/req`: server CPU (user+system) per request, of the uvicorn supervisor and workers for "
        "gateway rows, of the fake provider for direct rows. `DB CPU ms/req` (with --pg): the same for the "
        "PostgreSQL backends of the benchmark's database plus redis-server. `other cores`: cores kept busy by anything else "
        "on the machine during the window (values well above 0 mean the numbers are noisy).",
        "",
        "Requests/s of every round, in the order run:",
        "",
        *[f"- {line}" for line in rounds_summary(results)],
        "",
        *[f"- {note}" for note in notes],
        "",
    ]
    return "\n".join(parts)
