"""Entry point: ``python -m fakeprovider --host 127.0.0.1 --port 0 [--no-record]``.

After binding, prints exactly one line ``READY <port>`` to stdout (the
parent process -- see :mod:`fakeprovider.process` -- waits for it), then
serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aiohttp import web

from .server import make_app


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fakeprovider", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--no-record", action="store_true", help="disable the /_requests log (benchmarks)")
    return parser.parse_args(argv)


async def _serve(host: str, port: int, record: bool) -> None:
    # No access log: per-request logging would dominate benchmark profiles.
    # handler_cancellation: a client that gives up (e.g. during timeout=S)
    # frees its handler immediately instead of sleeping on; the short
    # shutdown_timeout keeps test teardown fast when streams are in flight.
    runner = web.AppRunner(
        make_app(record=record), access_log=None, handler_cancellation=True, shutdown_timeout=0.25
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=2048, reuse_address=True)
    await site.start()
    server = site._server  # aiohttp exposes no public accessor for the bound socket
    assert server is not None and server.sockets
    bound = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: rely on KeyboardInterrupt
            pass
    sys.stdout.write(f"READY {bound}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    coro = _serve(args.host, args.port, not args.no_record)
    try:
        if sys.platform.startswith("linux"):
            try:
                import uvloop
            except ImportError:
                uvloop = None  # type: ignore[assignment]
            if uvloop is not None:
                uvloop.run(coro)
                return 0
        asyncio.run(coro)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
