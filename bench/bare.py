"""The reference: a bare aiohttp server whose POST handler answers `success` and does nothing.

It runs the way `wechat-bot serve` runs the bot (uvloop when installed, `web.run_app`,
`access_log=None`, one process), so the ratio measures the pipeline and nothing else.

    python -m bench.bare --port 8082
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from aiohttp import web


async def success(request: web.Request) -> web.Response:
    """Answer `success` without reading the body (aiohttp drains it for keep-alive)."""
    return web.Response(text="success", content_type="text/plain")


async def healthz(request: web.Request) -> web.Response:
    """Readiness probe for the bench runner."""
    return web.Response(text="ok", content_type="text/plain")


def make_app(path: str = "/wechat") -> web.Application:
    """The bare application: POST on `path` (a fixed route, like the bot's), GET /healthz."""
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_post(path, success)
    return app


def use_uvloop() -> bool:
    """Install uvloop as `bot.cli.main` does (its helper is private); False when it is missing."""
    try:
        import uvloop
    except ImportError:
        return False
    uvloop.install()
    return True


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description="bare aiohttp reference server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/wechat")
    args = parser.parse_args(argv)
    use_uvloop()
    web.run_app(make_app(args.path), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
