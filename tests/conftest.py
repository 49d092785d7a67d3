"""Fixtures several test modules share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from bot.client.api import WeChatAPI
from bot.storage.memory import MemoryStorage
from bot.testing.fake_wechat import FakeWeChat, start_fake_wechat
from bot.testing.pytest_plugin import TEST_APP_ID, TEST_SECRET


class WallClock:
    """A wall clock tests move by hand (the fake's and the client's media expiry)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def fake_api(fake_wechat: FakeWeChat) -> AsyncIterator[str]:
    """The fake WeChat API on a loopback port; its base URL."""
    runner, url = await start_fake_wechat(fake=fake_wechat)
    yield url
    await runner.cleanup()


@pytest.fixture
def wall_clock() -> WallClock:
    """The clock `platform` and `platform_api` share."""
    return WallClock()


@pytest.fixture
def platform(wall_clock: WallClock) -> FakeWeChat:
    """The fake platform on `wall_clock`, with the demo followers."""
    return FakeWeChat(app_id=TEST_APP_ID, app_secret=TEST_SECRET, clock=wall_clock)


@pytest.fixture
async def platform_url(aiohttp_server: AiohttpServer, platform: FakeWeChat) -> str:
    """`platform` served on a loopback port."""
    server = await aiohttp_server(platform.app)
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def platform_api(platform_url: str, wall_clock: WallClock) -> AsyncIterator[WeChatAPI]:
    """The real API client against `platform` (API and QR-code images alike)."""
    async with aiohttp.ClientSession() as session:
        yield WeChatAPI(
            session,
            app_id=TEST_APP_ID,
            app_secret=TEST_SECRET,
            storage=MemoryStorage(10_000),
            base_url=platform_url,
            mp_base_url=platform_url,
            backoff=0.01,
            clock=wall_clock,
        )
