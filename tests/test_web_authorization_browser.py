"""Web authorization in a real browser: the emulator's link, the fake's consent, the landing page.

Playwright drives Debian's Chromium (`/usr/bin/chromium`) as `test_emulator` does; screenshots of
the landing and the error page are saved under /tmp for a person to look at.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.demo.session import DemoSession
from bot.demo.web import start_emulator
from bot.testing.pytest_plugin import BotFactory, BotUnderTest

CHROMIUM = Path("/usr/bin/chromium")
LANDING_SCREENSHOT = Path("/tmp/webauth-landing.png")
CONSENT_SCREENSHOT = Path("/tmp/webauth-consent.png")
ERROR_SCREENSHOT = Path("/tmp/webauth-error.png")
PHONE_WIDTH = 390


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture
async def bot(wechat_bot: BotFactory) -> BotUnderTest:
    """The greeting with web authorization on, against the fake's consent page."""
    return await wechat_bot(handlers=["handlers.greeting"], web_authorization=True)


@pytest.fixture
async def browser(bot: BotUnderTest) -> AsyncIterator[tuple[Any, str]]:
    """A headless Chromium context the size of a phone, and the emulator's URL."""
    reason = _browser_missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test needs Chromium and Playwright in CI: {reason}")
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    demo = DemoSession(bot.fake, bot, bot.url)
    runner, url = await start_emulator(demo, "127.0.0.1", 0, account_name="Test Account")
    try:
        async with async_playwright() as playwright:
            chromium = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
            )
            try:
                context = await chromium.new_context(
                    viewport={"width": PHONE_WIDTH, "height": 780}, device_scale_factor=2
                )
                context.set_default_timeout(10_000)
                yield context, url
            finally:
                await chromium.close()
    finally:
        await runner.cleanup()


async def test_link_consent_landing_and_the_next_greeting_in_chromium(
    browser: tuple[Any, str], bot: BotUnderTest
) -> None:
    from playwright.async_api import BrowserContext, expect

    context, url = browser
    assert isinstance(context, BrowserContext)
    errors: list[str] = []
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    await page.wait_for_selector("body[data-ready=true]")

    # The name-less greeting shows the link as a link, not as markup.
    await page.fill("#input", "你好")
    await page.click("#send")
    bubble = page.locator(".row.bot .bubble").last
    await expect(bubble).to_contain_text("你好！欢迎关注Test Account。")
    link = bubble.locator("a.link-in-text")
    await expect(link).to_have_text("点这里，让我用你的微信昵称称呼你")
    href = await link.get_attribute("href") or ""
    assert "scope=snsapi_userinfo" in href and "fake_user=o_demo_wang" in href
    assert "<a" not in (await bubble.inner_text())

    # The click opens the consent page; Allow lands on the bot's page.
    async with page.expect_popup() as popup_info:
        await link.click()
    consent = await popup_info.value
    await expect(consent.get_by_role("button", name="允许 · Allow")).to_be_visible()
    await consent.screenshot(path=str(CONSENT_SCREENSHOT))
    await consent.get_by_role("button", name="允许 · Allow").click()
    await expect(consent.locator("h1")).to_have_text("好的，王小明！")
    await expect(consent.locator("p")).to_contain_text("回到聊天吧")
    assert "/oauth/callback?" in consent.url
    width = await consent.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH  # nothing wider than the phone
    await consent.screenshot(path=str(LANDING_SCREENSHOT), full_page=True)

    # Reopening the same callback URL: the state was used, a clear 400 page.
    response = await consent.goto(consent.url)
    assert response is not None and response.status == 400
    await expect(consent.locator("h1")).to_have_text("链接已用过")
    await consent.screenshot(path=str(ERROR_SCREENSHOT), full_page=True)
    await consent.close()

    # Back in the chat, the next greeting uses the nickname.
    await page.fill("#input", "你好")
    await page.click("#send")
    await expect(page.locator(".row.bot .bubble").last).to_have_text(
        "你好，王小明！欢迎关注Test Account。"
    )
    assert bot.fake.counters["sns_userinfo"] == 1
    assert errors == []
    assert LANDING_SCREENSHOT.stat().st_size > 0
