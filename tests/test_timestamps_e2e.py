"""Timestamps a signed push carries, through HTTP on the fast path and through aiohttp alone.

WeChat sends the current Unix time as ASCII digits. Anything else under a valid signature (a
number too large for a float, a sign, spaces, other scripts' digits, an exponent) is refused
403 like a timestamp outside the window, an empty one 400 like a missing one: never a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from listening_bots import listening_bot
from support import odd_timestamps

from bot.server import fastpath
from bot.server.batch import Pending, answer_batch
from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import TEST_TOKEN
from bot.testing.simulator import build_xml, text_fields
from bot.webhook.services import Services
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
    fake_api: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Webhook]:
    """The bot served as `wechat-bot serve` serves it, with `fast_path` on and off."""
    fast_path: bool = request.param
    answered: list[Pending] = []

    def recorded(
        services: Services, path: str, batch: list[Pending], parse: Any, *flush: Any
    ) -> None:
        answered.extend(batch)
        answer_batch(services, path, batch, parse, *flush)

    monkeypatch.setattr(fastpath, "answer_batch", recorded)
    async with listening_bot(fake_wechat, fake_api, tmp_path, fast_path=fast_path) as bot:
        url = f"http://127.0.0.1:{bot.port}{bot.config.webhook_path}"
        yield Webhook(url, fast_path, answered)


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
