"""Bots as `serve` composes them (`make_runner` + `listen`), on loopback ports, in process.

Both HTTP paths: the fast path with its hand-off to aiohttp, and aiohttp alone
(`fast_path: false`); the connection limits injectable so tests need not wait 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from bot.config import Config, load_config, with_overrides
from bot.server.connections import DEFAULT_LIMITS, Limits
from bot.server.serve import Listener, listen, make_runner
from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import TEST_AES_KEY, TEST_TOKEN
from bot.webhook.app import create_app

WAIT = 5.0  # the longest any one read may take: a server that hangs fails the test


@dataclass
class ListeningBot:
    """One bot listening on 127.0.0.1:`port`."""

    config: Config
    runner: web.AppRunner
    listener: Listener
    port: int

    @property
    def aiohttp_connections(self) -> int:
        """Connections aiohttp's protocol serves right now."""
        assert self.runner.server is not None
        return len(self.runner.server.connections)


def bot_config(
    fake: FakeWeChat, api_url: str, data_dir: Path, *, safe: bool = False, **settings: Any
) -> Config:
    """The settings of a bot against `fake` on 127.0.0.1, the port left to the OS."""
    config_file = data_dir / "config.yaml"
    config_file.write_text("account_name: Test Account\n", encoding="utf-8")
    env = {
        "WECHAT_TOKEN": TEST_TOKEN,
        "WECHAT_APP_ID": fake.app_id,
        "WECHAT_APP_SECRET": fake.app_secret,
        "WECHAT_API_BASE_URL": api_url,
        "BOT_DATA_DIR": str(data_dir / "data"),
    }
    if safe:
        env["WECHAT_ENCODING_AES_KEY"] = TEST_AES_KEY
    config = with_overrides(load_config(config_file, env), **{"shutdown_grace": 1.0, **settings})
    return replace(config, host="127.0.0.1", port=0)  # the OS picks the port


@contextlib.asynccontextmanager
async def listening_bot(
    fake: FakeWeChat,
    api_url: str,
    data_dir: Path,
    *,
    fast_path: bool,
    limits: Limits = DEFAULT_LIMITS,
    safe: bool = False,
    **settings: Any,
) -> AsyncIterator[ListeningBot]:
    """A bot served as `serve` serves it, stopped on exit."""
    config = bot_config(fake, api_url, data_dir, safe=safe, fast_path=fast_path, **settings)
    runner = make_runner(create_app(config), config, limits)
    await runner.setup()
    listener = await listen(runner, config, limits)
    port = int(cast(socket.socket, listener.sockets[0]).getsockname()[1])
    try:
        yield ListeningBot(config, runner, listener, port)
    finally:
        await listener.shutdown(1.0)
        await runner.cleanup()


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = WAIT) -> bytes:
    """Everything the server sends until it closes (a reset counts as a close)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(65536), timeout):
            data += chunk
    return data
