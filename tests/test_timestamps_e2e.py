"""Timestamps a signed push carries, through HTTP on the fast path and through aiohttp alone.

WeChat sends the current Unix time as ASCII digits. Anything else under a valid signature (a
number too large for a float, a sign, spaces, other scripts' digits, an exponent) is refused
403 like a timestamp outside the window, an empty one 400 like a missing one: never a 500.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from support import odd_timestamps

from bot.config import load_config
from bot.server import fastpath
from bot.server.batch import Pending, answer_batch
from bot.server.fastpath import FastServer
from bot.testing.fake_wechat import FakeWeChat, start_fake_wechat
from bot.testing.pytest_plugin import TEST_TOKEN
from bot.testing.simulator import build_xml, text_fields
from bot.webhook.app import create_app
from bot.webhook.services import SERVICES, Services
from bot.wechat.signature import sha1_signature

STALE = "timestamp outside the accepted window\n"
MISSING = "missing timestamp or nonce\n"


@dataclass
class Webhook:
    """A bot on a loopback port, and how many pushes its fast path answered itself."""

    url: str
    fast_path: bool
    fast_answered: list[Pending]


@pytest.fixture(params=[True, False], ids=["fast_path", "aiohttp"])
async def webhook(
    request: pytest.FixtureRequest,
    fake_wechat: FakeWeChat,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Webhook]:
    """The bot served as `wechat-bot serve` serves it, with `fast_path` on and off."""
    fast_path: bool = request.param
    fake_runner, api_url = await start_fake_wechat(fake=fake_wechat)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f"fast_path: {str(fast_path).lower()}\n", encoding="utf-8")
    env = {
        "WECHAT_TOKEN": TEST_TOKEN,
        "WECHAT_APP_ID": fake_wechat.app_id,
        "WECHAT_APP_SECRET": fake_wechat.app_secret,
        "WECHAT_API_BASE_URL": api_url,
        "BOT_DATA_DIR": str(tmp_path / "data"),
    }
    config = load_config(config_file, env)
    answered: list[Pending] = []

    def recorded(services: Services, path: str, batch: list[Pending], parse: Any) -> None:
        answered.extend(batch)
        answer_batch(services, path, batch, parse)

    monkeypatch.setattr(fastpath, "answer_batch", recorded)
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    fast: FastServer | None = None
    if config.fast_path:
        assert runner.server is not None
        fast = FastServer(
            app[SERVICES], runner.server, path=config.webhook_path, max_body=config.max_body_bytes
        )
        await fast.start("127.0.0.1", 0)
        port = int(cast(socket.socket, fast.sockets[0]).getsockname()[1])
    else:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = int(runner.addresses[0][1])
    try:
        yield Webhook(f"http://127.0.0.1:{port}{config.webhook_path}", fast_path, answered)
    finally:
        if fast is not None:
            await fast.shutdown(1.0)
        await runner.cleanup()
        await fake_runner.cleanup()


async def push_with_timestamp(webhook: Webhook, timestamp: str, nonce: str) -> tuple[int, str]:
    """A text push whose query is validly signed over `timestamp`; (status, body)."""
    params = {
        "signature": sha1_signature(TEST_TOKEN, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
    }
    body = build_xml(text_fields("o_demo_wang", "你好")).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(webhook.url, params=params, data=body) as resp,
    ):
        return resp.status, await resp.text()


async def test_odd_timestamps_are_refused_403_never_500(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    timestamps = odd_timestamps(now)
    for i, timestamp in enumerate(timestamps):
        answer = await push_with_timestamp(webhook, timestamp, f"odd{i}")
        assert answer == (403, STALE), repr(timestamp)
    # the same pushes with WeChat's own form of the time are served (the setup is sound)
    status, _ = await push_with_timestamp(webhook, str(now), "plain")
    assert status == 200
    assert len(webhook.fast_answered) == (len(timestamps) + 1 if webhook.fast_path else 0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_empty_timestamp_is_refused_400_like_a_missing_one(webhook: Webhook) -> None:
    assert await push_with_timestamp(webhook, "", "empty") == (400, MISSING)
