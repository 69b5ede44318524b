"""Run the matrix over HTTP: every (model, variant) cell concurrently, under a bounded semaphore.

A plain aiohttp client sends the variant's raw JSON and reads the whole answer, so the check
sees exactly the bytes a client gets. A 5xx that is not a definite "no channel" answer is tried
again up to 3 times (250 ms, 500 ms, 1 s; capped at 2 s); if it persists the cell is SKIP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from .checks import FAIL, Verdict, is_retryable, judge, persistent_failure
from .variants import Variant

__all__ = ["CellResult", "MatrixRun", "run_matrix", "run_matrix_sync"]

RETRIES = 3
BACKOFF_START = 0.25
BACKOFF_MAX = 2.0
MAX_BODY = 32 * 1024 * 1024  # an answer larger than this is cut (and will fail its check)
RAW_EXCERPT = 4000  # characters of the raw answer kept for --json


@dataclass(slots=True)
class CellResult:
    model: str
    variant: str
    outcome: str  # PASS | FAIL | SKIP
    reason: str
    seconds: float  # duration of the last attempt
    status: int | None  # HTTP status of the last attempt (None: no answer)
    attempts: int
    body: str = ""  # the start of the last answer, for the JSON report

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class MatrixRun:
    base_url: str
    models: list[str]
    variants: list[str]
    results: list[CellResult]
    seconds: float

    def cell(self, model: str, variant: str) -> CellResult | None:
        return next((r for r in self.results if r.model == model and r.variant == variant), None)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def failed(self) -> bool:
        return self.count(FAIL) > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "models": self.models,
            "variants": self.variants,
            "seconds": round(self.seconds, 3),
            "totals": {"passed": self.count("PASS"), "failed": self.count("FAIL"), "skipped": self.count("SKIP")},
            "results": [r.to_dict() for r in self.results],
        }


def backoff(attempt: int) -> float:
    """Delay before retry number `attempt` (1-based): 250 ms doubling, at most 2 s."""
    return min(BACKOFF_MAX, BACKOFF_START * 2 ** (attempt - 1))


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY:
            break
    return b"".join(chunks)


async def run_cell(
    session: aiohttp.ClientSession,
    base_url: str,
    key: str,
    model: str,
    variant: Variant,
    *,
    timeout: float,
    strict: bool = False,
    sleep: Callable[[float], Any] = asyncio.sleep,
) -> CellResult:
    """One variant for one model, with the 5xx retries."""
    url = base_url.rstrip("/") + variant.path
    payload = variant.payload(model)
    headers = variant.headers(key)
    attempt = 0
    while True:
        attempt += 1
        started = time.perf_counter()
        status: int | None = None
        body = b""
        try:
            async with session.post(url, json=payload, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                status = resp.status
                content_type = resp.headers.get("Content-Type", "")
                body = await _read_capped(resp)
        except TimeoutError:
            return _result(model, variant, Verdict(FAIL, f"timeout after {timeout:g}s"), started, status, attempt, body)
        except aiohttp.ClientError as exc:
            if attempt <= RETRIES:
                await sleep(backoff(attempt))
                continue
            reason = f"connection error: {type(exc).__name__}: {exc}"
            return _result(model, variant, Verdict(FAIL, reason), started, status, attempt, body)
        if is_retryable(status, body):
            if attempt <= RETRIES:
                await sleep(backoff(attempt))
                continue
            verdict = persistent_failure(status, body)
            if strict:
                verdict = Verdict(FAIL, verdict.reason)
            return _result(model, variant, verdict, started, status, attempt, body)
        verdict = judge(variant, status, body, content_type)
        return _result(model, variant, verdict, started, status, attempt, body)


def _result(
    model: str, variant: Variant, verdict: Verdict, started: float, status: int | None, attempts: int, body: bytes
) -> CellResult:
    return CellResult(
        model=model,
        variant=variant.name,
        outcome=verdict.outcome,
        reason=verdict.reason,
        seconds=time.perf_counter() - started,
        status=status,
        attempts=attempts,
        body=body[:RAW_EXCERPT * 4].decode("utf-8", "replace")[:RAW_EXCERPT],
    )


async def run_matrix(
    base_url: str,
    key: str,
    models: Sequence[str],
    variants: Sequence[Variant],
    *,
    timeout: float = 60.0,
    concurrency: int = 8,
    strict: bool = False,
    on_result: Callable[[CellResult], None] | None = None,
) -> MatrixRun:
    """Every variant for every model; results in table order (variant-major, then model)."""
    semaphore = asyncio.Semaphore(max(1, concurrency))
    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=max(1, concurrency))

    async with aiohttp.ClientSession(connector=connector, trust_env=True) as session:  # honour HTTPS_PROXY, NO_PROXY

        async def guarded(model: str, variant: Variant) -> CellResult:
            async with semaphore:
                result = await run_cell(session, base_url, key, model, variant, timeout=timeout, strict=strict)
            if on_result is not None:
                on_result(result)
            return result

        results = await asyncio.gather(*(guarded(m, v) for v in variants for m in models))
    return MatrixRun(
        base_url=base_url,
        models=list(models),
        variants=[v.name for v in variants],
        results=list(results),
        seconds=time.perf_counter() - started,
    )


def run_matrix_sync(*args: Any, **kwargs: Any) -> MatrixRun:
    """`run_matrix` from synchronous code (the management command, tests)."""
    return asyncio.run(run_matrix(*args, **kwargs))
