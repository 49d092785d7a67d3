"""Fixtures several test modules share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.testing.fake_wechat import FakeWeChat, start_fake_wechat


@pytest.fixture
async def fake_api(fake_wechat: FakeWeChat) -> AsyncIterator[str]:
    """The fake WeChat API on a loopback port; its base URL."""
    runner, url = await start_fake_wechat(fake=fake_wechat)
    yield url
    await runner.cleanup()
