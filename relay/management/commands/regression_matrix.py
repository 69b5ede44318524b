"""`python manage.py regression_matrix`: run the conversion regression matrix against a deployment.

A client tool: it talks HTTP to any gateway (ours or the original One API) and imports nothing
from the relay or the database. Exit status 1 when any cell FAILs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from relay.matrix.report import render
from relay.matrix.runner import CellResult, run_matrix_sync
from relay.matrix.variants import VARIANTS, select_variants

VARIANT_NAMES = ", ".join(v.name for v in VARIANTS)


class Command(BaseCommand):
    help = (
        "Send the 20 regression-matrix variants ({chat,response,claude} x {plain,tools,structured} x "
        "{stream,no stream} + response-vision x {stream,no stream}) to every model and print a "
        "PASS/FAIL/SKIP table. Exits 1 on any FAIL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url", default=os.environ.get("API_BASE", ""),
            help="Gateway root, e.g. https://gateway.example.com (a trailing /v1 is ignored). Env: API_BASE.",
        )
        parser.add_argument("--key", default=os.environ.get("API_TOKEN", ""), help="Relay API key. Env: API_TOKEN.")
        parser.add_argument(
            "--models", default=os.environ.get("ONEAPI_TEST_MODELS", ""),
            help="Comma-separated models to test. Env: ONEAPI_TEST_MODELS.",
        )
        parser.add_argument(
            "--variants", default=os.environ.get("ONEAPI_TEST_VARIANTS", ""),
            help=f"Comma-separated variant name prefixes (default all). Names: {VARIANT_NAMES}.",
        )
        parser.add_argument("--timeout", type=float, default=60.0, help="Seconds per request (default 60).")
        parser.add_argument("--concurrency", type=int, default=8, help="Requests in flight at once (default 8).")
        parser.add_argument("--strict", action="store_true", help="Count a persistent 5xx as FAIL instead of SKIP.")
        parser.add_argument("--json", dest="json_path", default="", help="Also write the raw results to this file.")

    def handle(self, *args: Any, **options: Any) -> None:
        base_url = str(options["base_url"]).strip().rstrip("/")
        if base_url.endswith("/v1"):
            base_url = base_url[:-3]
        key = str(options["key"]).strip()
        models = [m.strip() for m in str(options["models"]).split(",") if m.strip()]
        if not base_url or not key or not models:
            raise CommandError("--base-url, --key and --models are required (or API_BASE, API_TOKEN, ONEAPI_TEST_MODELS)")
        if options["timeout"] <= 0 or options["concurrency"] < 1:
            raise CommandError("--timeout must be positive and --concurrency at least 1")
        try:
            variants = select_variants(options["variants"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None

        verbosity = int(options.get("verbosity", 1))

        def progress(result: CellResult) -> None:
            if verbosity >= 2:
                self.stderr.write(f"{result.outcome} {result.model} {result.variant} {result.reason}".rstrip())

        if verbosity >= 1:
            self.stderr.write(f"Running {len(variants)} variant(s) x {len(models)} model(s) against {base_url}")
        run = run_matrix_sync(
            base_url, key, models, variants,
            timeout=float(options["timeout"]), concurrency=int(options["concurrency"]),
            strict=bool(options["strict"]), on_result=progress,
        )
        self.stdout.write(render(run), ending="")
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(run.to_dict(), indent=2, ensure_ascii=False) + "\n")
        if run.failed:
            raise CommandError(f"{run.count('FAIL')} of {len(run.results)} cell(s) failed")
