"""The regression matrix: a client-side acceptance test of a deployment's format conversion.

Every model under test is asked 20 variants ({Chat, Responses, Claude Messages} x {plain, tools,
structured} x {stream, no stream}, plus Responses vision x {stream, no stream}) over plain HTTP,
and each answer is judged PASS, FAIL (with the reason) or SKIP (with why). It imports nothing
from the relay: it works against any deployment, ours or the original's.
Run it with ``python manage.py regression_matrix --base-url URL --key KEY --models m1,m2``.
"""

from __future__ import annotations

from .checks import FAIL, PASS, SKIP, Verdict, judge
from .report import render
from .runner import CellResult, MatrixRun, run_matrix, run_matrix_sync
from .variants import VARIANTS, Variant, select_variants

__all__ = [
    "FAIL",
    "PASS",
    "SKIP",
    "VARIANTS",
    "CellResult",
    "MatrixRun",
    "Variant",
    "Verdict",
    "judge",
    "render",
    "run_matrix",
    "run_matrix_sync",
    "select_variants",
]
