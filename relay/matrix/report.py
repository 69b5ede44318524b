"""The matrix as text: variants as rows, models as columns, then totals, failures and skips."""

from __future__ import annotations

from .checks import FAIL, PASS, SKIP
from .runner import CellResult, MatrixRun

__all__ = ["cell_text", "render"]

REASON_WIDTH = 40


def _short(text: str, width: int = REASON_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def cell_text(result: CellResult | None) -> str:
    if result is None:
        return "-"
    if result.outcome == PASS:
        return f"PASS {result.seconds:.2f}s"
    return f"{result.outcome} {_short(result.reason)}".rstrip()


def _detail(result: CellResult) -> str:
    parts = [f"HTTP {result.status}"] if result.status is not None else []
    if result.attempts > 1:
        parts.append(f"{result.attempts} attempts")
    return f" ({', '.join(parts)})" if parts else ""


def render(run: MatrixRun) -> str:
    header = ["variant", *run.models]
    rows = [[variant, *(cell_text(run.cell(model, variant)) for model in run.models)] for variant in run.variants]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    out = [line(header), "-+-".join("-" * w for w in widths)]
    out += [line(row) for row in rows]
    out.append("")
    out.append(
        f"Totals: {run.count(PASS)} passed, {run.count(FAIL)} failed, {run.count(SKIP)} skipped "
        f"({len(run.results)} cells, {run.seconds:.1f}s)"
    )
    for title, outcome in (("Failures", FAIL), ("Skips", SKIP)):
        listed = [r for r in run.results if r.outcome == outcome]
        if listed:
            out.append("")
            out.append(f"{title}:")
            out += [f"  {r.model} / {r.variant}: {r.reason}{_detail(r)}" for r in listed]
    return "\n".join(out) + "\n"
