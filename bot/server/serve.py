"""`wechat-bot serve`: the app on a port until SIGTERM or SIGINT, then a graceful stop.

The webhook's pushes go through `bot.server.fastpath` (unless `fast_path: false`, or the speed
layer is not there); the listening socket hands every other request to the aiohttp app, which
`web.AppRunner` runs as `web.run_app` would: services opened on start-up, closed in its
cleanup. Every connection aiohttp serves keeps the limits of `bot.server.connections`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from bot.config import Config
from bot.server.connections import (
    DEFAULT_LIMITS,
    AiohttpServer,
    BadRequestLog,
    Limits,
    guarded,
)
from bot.server.eager import eager_starter
from bot.webhook.app import create_app
from bot.webhook.services import SERVICES

try:  # the speed layer is optional: without it aiohttp answers every request
    from bot.server.fastpath import FastServer
except ImportError:
    FastServer = None  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)


class Listener(Protocol):
    """The listening socket and its connections (the fast path's, or aiohttp's alone)."""

    @property
    def sockets(self) -> tuple[object, ...]:
        """The listening sockets."""

    async def shutdown(self, grace: float) -> None:
        """Stop listening; connections still answering get `grace` seconds."""


async def serve(config: Config, *, ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT; in-flight pushes get `shutdown_grace` to finish.

    Start-up errors (Redis unreachable: `StorageUnavailable`) propagate before listening.
    """
    app = create_app(config)
    app.on_startup.append(tune_gc)
    runner = make_runner(app, config)
    await runner.setup()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    listener: Listener | None = None
    try:
        listener = await listen(runner, config)
        (ready or _announce)(f"http://{config.host}:{config.port}")
        await stop.wait()
        log.info("stopping: finishing in-flight work (up to %.0f s)", config.shutdown_grace)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if listener is not None:
            await listener.shutdown(config.shutdown_grace)
        await runner.cleanup()


def make_runner(
    app: web.Application, config: Config, limits: Limits = DEFAULT_LIMITS
) -> web.AppRunner:
    """The runner of `app` as `serve` runs it: idle keep-alive limited, one line per bad request."""
    return web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=config.shutdown_grace,
        keepalive_timeout=limits.keepalive_timeout,
        logger=BadRequestLog(),
    )


async def listen(
    runner: web.AppRunner, config: Config, limits: Limits = DEFAULT_LIMITS
) -> Listener:
    """Listen on the configured host and port: pushes on the fast path (unless
    `fast_path: false`), everything else through `runner`'s aiohttp protocol, guarded."""
    assert runner.server is not None, "runner.setup() first"
    runner.app[SERVICES].ledger.start = eager_starter()  # a handler that never waits: no loop trip
    fallback = guarded(runner.server, limits)
    if config.fast_path and FastServer is not None:
        fast = FastServer(
            runner.app[SERVICES],
            fallback,
            path=config.webhook_path,
            max_body=config.max_body_bytes,
            limits=limits,
        )
        await fast.start(config.host, config.port)
        return fast
    plain = AiohttpServer(fallback)
    await plain.start(config.host, config.port)
    return plain


def _announce(url: str) -> None:
    print(f"======== Running on {url} ========", file=sys.stderr, flush=True)


async def tune_gc(app: web.Application) -> None:
    """Keep start-up objects out of every collection and collect young objects less often.

    The default thresholds spent a noticeable share of CPU in the collector, with full
    collections long enough to make the p99 (bench/README.md, "Measured").
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
