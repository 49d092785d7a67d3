"""The chat emulator: its JSON API over the real signed path, and the page in headless Chromium.

This module is also a handler module (`router` below), routed before the greeting, so the
emulator shows every kind of reply a follower can get.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot import Article, Context, ImageReply, Message, NewsReply, Reply, Router
from bot import TransferCustomerServiceReply as Transfer
from bot.config import load_config
from bot.demo.session import DemoSession
from bot.demo.web import (
    DEFAULT_MENU,
    configured_menu,
    create_emulator_app,
    late_item,
    load_menu,
    normalize_menu,
    serve_emulator,
    start_emulator,
)
from bot.testing.pytest_plugin import BotFactory, BotUnderTest
from bot.testing.simulator import WeChatSimulator

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path("/tmp/emulator.png")
GREETING = "你好！欢迎关注Test Account。"
TEST_MENU: dict[str, Any] = {
    "button": [
        {"type": "click", "name": "菜单A", "key": "MENU_A"},
        {"type": "click", "name": "新闻", "key": "MENU_NEWS"},
        {
            "name": "更多",
            "sub_button": [
                {"type": "click", "name": "人工客服", "key": "MENU_HUMAN"},
                {"type": "view", "name": "官网", "url": "https://example.com/"},
                {"type": "scancode_push", "name": "扫一扫", "key": "SCAN"},
            ],
        },
    ]
}
NEWS = NewsReply(
    (
        Article("春季新品", "三款新茶上市 <b>限时</b>", "http://p/1.jpg", "http://u/1"),
        Article("门店地址", "", "http://p/2.jpg", "javascript:alert(1)"),
    )
)

router = Router("emulator-test")
RICH: dict[str, Reply] = {"image": ImageReply("MEDIA_IMG_42"), "news": NEWS, "human": Transfer()}


@router.text(re.compile(r"^reply (image|news|human)$"))
async def rich(msg: Message, ctx: Context) -> Reply:
    """`reply image` / `reply news` / `reply human`: that kind of reply."""
    assert ctx.match is not None
    return RICH[ctx.match[1]]


@router.text("echo html")
async def echo_html(msg: Message, ctx: Context) -> str:
    """Markup in a reply, which the page must show as text."""
    return "<img src=x onerror=\"document.title='pwned'\"><b>bold?</b>"


@router.text("slow")
async def slow(msg: Message, ctx: Context) -> str:
    """Outlasts a short reply budget, so the answer goes out through customer service."""
    await asyncio.sleep(1.5)
    return "晚到的回复"


@router.event("CLICK", "MENU_A")
async def menu_a(msg: Message, ctx: Context) -> str:
    """A menu key."""
    return "menu A"


@router.event("CLICK", "MENU_NEWS")
async def menu_news(msg: Message, ctx: Context) -> Reply:
    """A menu key answered with news."""
    return NEWS


@router.event("VIEW")
async def view(msg: Message, ctx: Context) -> None:
    """A link button: WeChat opens the page, the bot says nothing."""
    return None


HANDLERS = ["test_emulator", "handlers.greeting"]
Client = TestClient[Any, Any]


def demo_of(bot: BotUnderTest) -> DemoSession:
    """A DemoSession around a bot under test: same fake API, same signing simulator."""
    return DemoSession(bot.fake, bot, bot.url)


@pytest.fixture
async def bot(wechat_bot: BotFactory) -> BotUnderTest:
    """The bot with this module's handlers and a short reply budget."""
    return await wechat_bot(handlers=HANDLERS, reply_budget=1.0, profile_timeout=0.8)


@pytest.fixture
async def emulator(bot: BotUnderTest, aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    """A client of the emulator's app for that bot."""
    app = create_emulator_app(demo_of(bot), account_name="Test Account", menu=TEST_MENU)
    return await aiohttp_client(app)


async def post(client: Client, path: str, body: object) -> tuple[int, dict[str, Any]]:
    """POST JSON; the status and the decoded answer."""
    async with client.post(path, json=body) as response:
        return response.status, await response.json()


# -- the JSON API ---------------------------------------------------------------------------


async def test_page_is_served_with_a_strict_policy(emulator: Client) -> None:
    async with emulator.get("/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "connect-src 'self'" in response.headers["Content-Security-Policy"]
        page = await response.text()
    assert 'id="messages"' in page and 'id="input"' in page and 'id="menu"' in page
    assert "innerHTML" not in page  # replies reach the page through textContent only


async def test_config_has_account_menu_and_default_follower(emulator: Client) -> None:
    async with emulator.get("/api/config") as response:
        config = await response.json()
    assert config["account"] == "Test Account"
    assert config["openid"] == "o_demo_wang"
    assert config["menu"] == [
        {"name": "菜单A", "event": "CLICK", "key": "MENU_A"},
        {"name": "新闻", "event": "CLICK", "key": "MENU_NEWS"},
        {
            "name": "更多",
            "sub": [
                {"name": "人工客服", "event": "CLICK", "key": "MENU_HUMAN"},
                {"name": "官网", "event": "VIEW", "key": "https://example.com/"},
                {"name": "扫一扫", "event": None, "key": None},
            ],
        },
    ]


async def test_followers_lists_the_demo_followers(emulator: Client) -> None:
    async with emulator.get("/api/followers") as response:
        followers = (await response.json())["followers"]
    by_id = {f["openid"]: f for f in followers}
    assert list(by_id) == ["o_demo_alice", "o_demo_wang", "o_demo_lin", "o_demo_sam", "o_demo_gone"]
    assert by_id["o_demo_alice"] == {
        "openid": "o_demo_alice",
        "nickname": "Alice",
        "remark": "",
        "subscribed": True,
    }
    assert by_id["o_demo_gone"]["subscribed"] is False


async def test_send_text_gets_the_greeting(emulator: Client) -> None:
    status, body = await post(emulator, "/api/send", {"openid": "o_demo_wang", "text": "你好"})
    assert status == 200
    assert body == {"replies": [{"type": "text", "text": GREETING, "encrypted": False}]}


async def test_the_follower_picker_changes_who_speaks(emulator: Client) -> None:
    status, body = await post(emulator, "/api/send", {"openid": "o_demo_alice", "text": "hi"})
    assert status == 200
    assert body["replies"][0]["text"] == "Hello, Alice! Welcome to Test Account."


async def test_menu_click_gets_its_reply(emulator: Client) -> None:
    status, body = await post(
        emulator, "/api/event", {"openid": "o_demo_wang", "event": "CLICK", "key": "MENU_A"}
    )
    assert status == 200
    assert body == {"replies": [{"type": "text", "text": "menu A", "encrypted": False}]}


async def test_news_image_and_handover_replies_become_items(emulator: Client) -> None:
    _, news = await post(
        emulator, "/api/event", {"openid": "o_demo_wang", "event": "CLICK", "key": "MENU_NEWS"}
    )
    assert news["replies"] == [
        {
            "type": "news",
            "articles": [
                {
                    "title": "春季新品",
                    "description": "三款新茶上市 <b>限时</b>",
                    "pic_url": "http://p/1.jpg",
                    "url": "http://u/1",
                },
                {
                    "title": "门店地址",
                    "description": "",
                    "pic_url": "http://p/2.jpg",
                    "url": "javascript:alert(1)",
                },
            ],
            "encrypted": False,
        }
    ]
    _, image = await post(emulator, "/api/send", {"openid": "o_demo_wang", "text": "reply image"})
    assert image["replies"] == [{"type": "image", "media_id": "MEDIA_IMG_42", "encrypted": False}]
    _, human = await post(emulator, "/api/send", {"openid": "o_demo_wang", "text": "reply human"})
    assert human["replies"] == [{"type": "transfer", "kf_account": "", "encrypted": False}]


async def test_follow_and_unfollow_reach_the_bot_and_the_fake(
    emulator: Client, bot: BotUnderTest
) -> None:
    status, body = await post(
        emulator, "/api/event", {"openid": "o_demo_gone", "event": "subscribe"}
    )
    assert status == 200
    assert body["replies"][0]["text"] == GREETING
    async with emulator.get("/api/followers") as response:
        followers = {f["openid"]: f for f in (await response.json())["followers"]}
    assert followers["o_demo_gone"]["subscribed"] is True

    status, body = await post(
        emulator, "/api/event", {"openid": "o_demo_wang", "event": "unsubscribe"}
    )
    assert (status, body) == (200, {"replies": []})
    async with emulator.get("/api/followers") as response:
        followers = {f["openid"]: f for f in (await response.json())["followers"]}
    assert followers["o_demo_wang"]["subscribed"] is False


async def test_unknown_openid_is_refused(emulator: Client) -> None:
    status, body = await post(emulator, "/api/send", {"openid": "o_stranger", "text": "你好"})
    assert status == 404
    assert body == {"error": "unknown follower 'o_stranger'"}
    status, _ = await post(emulator, "/api/event", {"openid": "o_stranger", "event": "subscribe"})
    assert status == 404
    async with emulator.get("/api/late", params={"openid": "o_stranger"}) as response:
        assert response.status == 404


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/api/send", b"{not json", 400, "body is not valid JSON"),
        ("/api/send", b"\xff\xfe", 400, "body is not valid JSON"),
        ("/api/send", b"[1, 2]", 400, "body must be a JSON object"),
        ("/api/send", b'{"openid": "o_demo_wang"}', 400, "text must be a non-empty string"),
        (
            "/api/send",
            b'{"openid": "o_demo_wang", "text": "  "}',
            400,
            "text must be a non-empty string",
        ),
        ("/api/send", b'{"openid": 7, "text": "hi"}', 400, "openid must be a non-empty string"),
        ("/api/event", b"", 400, "body is not valid JSON"),
        (
            "/api/event",
            b'{"openid": "o_demo_wang", "event": "CLICK"}',
            400,
            "a CLICK event needs a key",
        ),
        (
            "/api/event",
            b'{"openid": "o_demo_wang", "event": "CLICK", "key": 5}',
            400,
            "key must be a string of at most 1024 characters",
        ),
    ],
)
async def test_bad_requests_get_400(
    emulator: Client, path: str, body: bytes, status: int, error: str
) -> None:
    headers = {"Content-Type": "application/json"}
    async with emulator.post(path, data=body, headers=headers) as response:
        assert response.status == status
        assert (await response.json()) == {"error": error}


async def test_unknown_event_and_overlong_text_are_refused(emulator: Client) -> None:
    status, body = await post(
        emulator, "/api/event", {"openid": "o_demo_wang", "event": "LOCATION"}
    )
    assert status == 400
    assert body["error"].startswith("event must be one of")
    status, body = await post(emulator, "/api/send", {"openid": "o_demo_wang", "text": "长" * 2049})
    assert (status, body) == (400, {"error": "text is longer than 2048 characters"})


async def test_only_json_is_accepted(emulator: Client) -> None:
    """A cross-site form post (no CORS preflight) cannot drive the emulator."""
    form = {"openid": "o_demo_wang", "text": "你好"}
    async with emulator.post("/api/send", data=form) as response:
        assert response.status == 415
    async with emulator.post(
        "/api/send", data=json.dumps(form), headers={"Content-Type": "text/plain"}
    ) as response:
        assert response.status == 415


async def test_late_replies_are_polled_from_the_customer_service_api(emulator: Client) -> None:
    status, body = await post(emulator, "/api/send", {"openid": "o_demo_wang", "text": "slow"})
    assert (status, body) == (200, {"replies": []})  # past the budget: `success` now, text later
    deadline = time.monotonic() + 5.0
    late: dict[str, Any] = {"messages": []}
    while not late["messages"]:
        assert time.monotonic() < deadline, "no late message within 5 s"
        await asyncio.sleep(0.05)
        async with emulator.get("/api/late", params={"openid": "o_demo_wang"}) as response:
            late = await response.json()
    assert late == {"messages": [{"index": 0, "type": "text", "text": "晚到的回复"}], "next": 1}
    async with emulator.get(
        "/api/late", params={"openid": "o_demo_wang", "since": "1"}
    ) as response:
        assert await response.json() == {"messages": [], "next": 1}
    async with emulator.get("/api/late", params={"openid": "o_demo_alice"}) as response:
        assert await response.json() == {"messages": [], "next": 1}
    async with emulator.get(
        "/api/late", params={"openid": "o_demo_wang", "since": "x"}
    ) as response:
        assert response.status == 400


async def test_safe_mode_replies_come_back_decrypted(
    wechat_bot: BotFactory, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    bot = await wechat_bot(handlers=HANDLERS, mode="safe")
    client = await aiohttp_client(create_emulator_app(demo_of(bot), menu=TEST_MENU))
    status, body = await post(client, "/api/send", {"openid": "o_demo_wang", "text": "你好"})
    assert status == 200
    assert body == {"replies": [{"type": "text", "text": GREETING, "encrypted": True}]}


async def test_sends_are_signed_pushes_the_bot_verifies(
    bot: BotUnderTest, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """With the wrong server token the bot refuses: the emulator really goes through signing."""
    wrong = WeChatSimulator(bot.session, bot.url, token="not-the-token")
    client = await aiohttp_client(create_emulator_app(DemoSession(bot.fake, wrong, bot.url)))
    status, body = await post(client, "/api/send", {"openid": "o_demo_wang", "text": "你好"})
    assert status == 200
    assert body == {"replies": [{"type": "error", "text": "HTTP 403: invalid signature"}]}


async def test_an_unreachable_bot_is_a_502(
    bot: BotUnderTest,
    aiohttp_client: Callable[..., Awaitable[Client]],
    unused_tcp_port: int,
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/wechat"
    gone = WeChatSimulator(bot.session, url, token="t")
    client = await aiohttp_client(create_emulator_app(DemoSession(bot.fake, gone, url)))
    status, body = await post(client, "/api/send", {"openid": "o_demo_wang", "text": "你好"})
    assert status == 502
    assert body["error"].startswith("cannot reach the bot")


def test_menu_falls_back_to_the_default_and_rejects_bad_shapes() -> None:
    assert load_menu() == normalize_menu(DEFAULT_MENU)
    assert load_menu(replace(SHIPPED, menu=None)) == normalize_menu(DEFAULT_MENU)
    for bad in (None, {"button": "x"}, {"button": [{"type": "click"}]}, [1]):
        with pytest.raises(ValueError):
            normalize_menu(bad)


SHIPPED = load_config(
    Path(__file__).resolve().parents[1] / "config.yaml",
    {"WECHAT_TOKEN": "tok123", "WECHAT_APP_ID": "wx_fake_app", "WECHAT_APP_SECRET": "s"},
)


def test_the_page_shows_the_configured_menu() -> None:
    assert load_menu(SHIPPED) == [
        {"name": "关于我们", "event": "CLICK", "key": "MENU_ABOUT"},
        {"name": "海报", "event": "CLICK", "key": "MENU_POSTER"},
        {
            "name": "更多",
            "sub": [
                {"name": "联系我们", "event": "CLICK", "key": "MENU_CONTACT"},
                {"name": "官网", "event": "VIEW", "key": "https://example.com/"},
            ],
        },
    ]


async def test_a_configured_button_sends_its_real_event(
    wechat_bot: BotFactory, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    bot = await wechat_bot(handlers=["handlers.menu", "handlers.greeting"])
    app = create_emulator_app(demo_of(bot), menu=configured_menu(SHIPPED))
    client = await aiohttp_client(app)
    async with client.get("/api/config") as response:
        menu = (await response.json())["menu"]
    poster = menu[1]
    status, body = await post(
        client,
        "/api/event",
        {"openid": "o_demo_wang", "event": poster["event"], "key": poster["key"]},
    )
    assert status == 200
    assert body["replies"][0]["type"] == "image"  # the poster, uploaded from its file
    assert bot.fake.counters["media_upload"] == 1


def test_late_items_from_customer_service_bodies() -> None:
    assert late_item({"touser": "o", "msgtype": "image", "image": {"media_id": "M1"}}) == {
        "type": "image",
        "media_id": "M1",
    }
    news = {
        "msgtype": "news",
        "news": {
            "articles": [{"title": "T", "description": "D", "url": "http://u", "picurl": "P"}]
        },
    }
    assert late_item(news) == {
        "type": "news",
        "articles": [{"title": "T", "description": "D", "pic_url": "P", "url": "http://u"}],
    }
    assert late_item({"msgtype": "mpnews", "mpnews": {}}) == {"type": "other", "kind": "mpnews"}


async def test_serve_emulator_serves_until_stopped(
    bot: BotUnderTest, capsys: pytest.CaptureFixture[str]
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(serve_emulator(demo_of(bot), stop=stop))
    printed = ""
    deadline = time.monotonic() + 5.0
    while "http://" not in printed:
        assert time.monotonic() < deadline, "no URL printed"
        await asyncio.sleep(0.02)
        printed += capsys.readouterr().out
    url = printed.split("Chat emulator on ", 1)[1].split()[0]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/")
    async with aiohttp.ClientSession() as session, session.get(url + "api/config") as response:
        assert response.status == 200
    stop.set()
    assert await asyncio.wait_for(task, 5.0) == 0
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, session.get(url + "api/config"):
            pass


# -- in a real browser ----------------------------------------------------------------------


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture
async def browser_page(bot: BotUnderTest) -> AsyncIterator[tuple[Any, str]]:
    """A headless Chromium page and the URL of an emulator served on a free port."""
    reason = _browser_missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test needs Chromium and Playwright in CI: {reason}")
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    runner, url = await start_emulator(
        demo_of(bot), "127.0.0.1", 0, account_name="Test Account", menu=TEST_MENU
    )
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
            )
            try:
                page = await browser.new_page(viewport={"width": 900, "height": 860})
                page.set_default_timeout(10_000)
                yield page, url
            finally:
                await browser.close()
    finally:
        await runner.cleanup()


async def test_chat_in_headless_chromium(browser_page: tuple[Any, str]) -> None:
    from playwright.async_api import Page, expect

    page, url = browser_page
    assert isinstance(page, Page)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    await page.wait_for_selector("body[data-ready=true]")
    await expect(page.locator("#account")).to_have_text("Test Account")
    await expect(page.locator("#follower")).to_have_value("o_demo_wang")

    # Type, press send, and the greeting appears as the bot's bubble.
    await page.fill("#input", "你好")
    await page.click("#send")
    await expect(page.locator(".row.me .bubble").last).to_have_text("你好")
    await expect(page.locator(".row.bot .bubble").last).to_have_text(GREETING)
    await expect(page.locator("#input")).to_have_value("")

    # A menu button: its CLICK reply; another: a news card, unsafe link not made a link.
    await page.get_by_role("button", name="菜单A").click()
    await expect(page.locator(".row.bot .bubble").last).to_have_text("menu A")
    await page.get_by_role("button", name="新闻").click()
    card = page.locator(".card").last
    await expect(card.locator(".lead .title")).to_have_text("春季新品")
    await expect(card.locator(".desc")).to_have_text("三款新茶上市 <b>限时</b>")
    await expect(card.locator("a.article")).to_have_count(1)
    assert await card.locator("a.article").get_attribute("href") == "http://u/1"

    # Image placeholder, markup shown as text, the hand-over notice, a sub-menu.
    await page.fill("#input", "reply image")
    await page.press("#input", "Enter")
    await expect(page.locator(".tile .media").last).to_have_text("MEDIA_IMG_42")
    await page.fill("#input", "echo html")
    await page.click("#send")
    bubble = page.locator(".row.bot .bubble").last
    await expect(bubble).to_have_text("<img src=x onerror=\"document.title='pwned'\"><b>bold?</b>")
    assert await page.locator("#messages img, #messages b").count() == 0
    await page.fill("#input", "reply human")
    await page.click("#send")
    await expect(page.locator(".notice.transfer")).to_contain_text("handed over to a human agent")
    await page.get_by_role("button", name="更多").click()
    await expect(page.get_by_role("button", name="扫一扫")).to_be_disabled()
    await page.get_by_role("button", name="官网").click()
    await expect(page.locator(".notice").last).to_have_text("（无回复 · no reply）")

    # A late reply arrives by polling; then another follower has a separate conversation.
    await page.fill("#input", "slow")
    await page.click("#send")
    late = page.locator(".stack.late")
    await expect(late.locator(".bubble")).to_have_text("晚到的回复")
    await expect(late.locator(".caption")).to_have_text("客服消息 · sent later")
    await page.screenshot(path=str(SCREENSHOT))

    await page.select_option("#follower", "o_demo_gone")
    await expect(page.locator("#messages .row")).to_have_count(0)
    await expect(page.locator("#follow")).to_be_enabled()
    await page.click("#follow")
    await expect(page.locator(".row.bot .bubble").last).to_have_text(GREETING)
    await expect(page.locator("#unfollow")).to_be_enabled()
    await expect(page.locator("#follow")).to_be_disabled()
    assert await page.title() == "Test Account · WeChat bot emulator"
    assert errors == []
