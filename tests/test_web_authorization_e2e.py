"""Web authorization end to end: the greeting's link, the fake's consent, the bot's callback.

Everything goes over HTTP: signed pushes to the bot, the link opened on the fake WeChat API's
authorize page as the follower, Allow or Deny, the redirect to `GET /oauth/callback`.
"""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis_fixtures
from aiohttp.test_utils import TestClient, TestServer
from redis_fixtures import delete_namespace
from support import served_bot
from webauth_flow import callback_url, consent, link_in, open_page, state_of

from bot.config import Config
from bot.followers.store import Preferences
from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import BotFactory, BotUnderTest
from bot.testing.simulator import WeChatSimulator
from bot.webauth.settings import CALLBACK_PATH
from bot.webauth.state import StateSigner
from bot.webhook.app import create_app
from bot.webhook.services import SERVICES

redis_url = redis_fixtures.redis_url

ACCOUNT = "Test Account"
WANG = "o_demo_wang"
NICKNAME = "王小明"  # the fake's WeChat nickname of o_demo_wang


async def stored(bot: BotUnderTest, openid: str) -> Preferences:
    """What the bot's store holds for `openid`."""
    return await bot.app[SERVICES].followers.preferences(openid)


async def link_for(bot: BotUnderTest, openid: str = WANG, text: str = "你好") -> str:
    """The link the greeting offers `openid`."""
    reply = await bot.send_text(openid, text)
    href, _ = link_in(reply.content)
    return href


def signer_of(config: Config, clock: float | None = None) -> StateSigner:
    """A signer with the bot's key (to forge what an attacker could not)."""
    ttl = config.web_authorization.state_ttl
    if clock is None:
        return StateSigner(config.app_id, config.app_secret, ttl)
    return StateSigner(config.app_id, config.app_secret, ttl, clock=lambda: clock)


async def test_a_nameless_follower_taps_the_link_allows_and_is_greeted_by_nickname(
    wechat_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bot = await wechat_bot(web_authorization=True)
    welcome = await bot.follow(WANG)
    greeting, line = (welcome.content or "").split("\n")
    assert greeting == f"你好！欢迎关注{ACCOUNT}。"
    href, text = link_in(line)
    assert text == "点这里，让我用你的微信昵称称呼你"
    url = urlsplit(href)
    assert url.path == "/connect/oauth2/authorize" and url.fragment == "wechat_redirect"
    query = parse_qs(url.query)
    assert query["appid"] == [bot.config.app_id]
    assert query["scope"] == ["snsapi_userinfo"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [bot.config.web_authorization.public_url + CALLBACK_PATH]
    assert re.fullmatch(r"[a-zA-Z0-9]{1,128}", query["state"][0])

    landing = await consent(bot.session, href, WANG)
    assert landing.status == 200
    assert urlsplit(landing.url).path == CALLBACK_PATH
    assert f"好的，{NICKNAME}！" in landing.text
    assert "回到聊天吧" in landing.text
    assert 'name="viewport"' in landing.text and 'lang="zh-Hans"' in landing.text
    assert await stored(bot, WANG) == Preferences(None, None, NICKNAME)
    # the follower's record holds the nickname alone: no token, no code
    record = await bot.app[SERVICES].storage.get_record(f"follower:{WANG}")
    assert record == {"pref:wechat_name": NICKNAME}

    again = await bot.send_text(WANG, "你好")
    assert again.content == f"你好，{NICKNAME}！欢迎关注{ACCOUNT}。"
    assert bot.fake.counters["sns_access_token"] == 1
    assert bot.fake.counters["sns_userinfo"] == 1
    # nothing secret or personal at INFO: no nickname, no code, no token, no state
    code = parse_qs(urlsplit(landing.url).query)["code"][0]
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    for secret in (NICKNAME, code, query["state"][0], "sns_"):
        assert secret not in ours
    assert "a follower shared their WeChat nickname" in ours


async def test_the_landing_page_speaks_the_followers_language(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(web_authorization=True)
    href, text = link_in((await bot.send_text("o_demo_sam", "hello there")).content)
    assert text == "Tap here to let me call you by your WeChat name"
    landing = await consent(bot.session, href, "o_demo_sam")
    assert "Great, Sam 🌊!" in landing.text and 'lang="en"' in landing.text
    assert (
        await bot.send_text("o_demo_sam", "hi")
    ).content == f"Hello, Sam 🌊! Welcome to {ACCOUNT}."
    href, text = link_in((await bot.send_text(WANG, "這個怎麼樣")).content)
    assert text == "點這裡，讓我用你的微信暱稱稱呼你"
    landing = await consent(bot.session, href, WANG)
    assert "好的，王小明！" in landing.text and "回到聊天吧，以後" in landing.text


@pytest.mark.parametrize(
    ("command", "link_text"),
    [
        ("用微信昵称", "点这里，让我用你的微信昵称称呼你"),
        ("用微信暱稱", "點這裡，讓我用你的微信暱稱稱呼你"),
        ("use my WeChat name", "Tap here to let me call you by your WeChat name"),
        ("Use my wechat nickname.", "Tap here to let me call you by your WeChat name"),
    ],
)
async def test_the_command_answers_with_the_link_any_time(
    wechat_bot: BotFactory, command: str, link_text: str
) -> None:
    bot = await wechat_bot(web_authorization=True)
    await bot.send_text(WANG, "叫我小王")
    assert (await bot.send_text(WANG, "你好")).content == f"你好，小王！欢迎关注{ACCOUNT}。"
    reply = await bot.send_text(WANG, command)
    href, text = link_in(reply.content)
    assert text == link_text
    assert (await consent(bot.session, href, WANG)).status == 200


async def test_off_by_default_no_link_no_callback_and_the_command_explains(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot()
    assert (await bot.follow(WANG)).content == f"你好！欢迎关注{ACCOUNT}。"
    reply = await bot.send_text(WANG, "用微信昵称")
    assert reply.content is not None and "<a " not in reply.content
    assert "叫我" in reply.content
    async with bot.client.get(CALLBACK_PATH, params={"state": "x", "code": "y"}) as response:
        assert response.status == 404


async def test_name_precedence_and_forgetting_both_names(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(web_authorization=True)
    lin = "o_demo_lin"  # the operator's remark: 林老師; WeChat nickname: 林曉
    href = await link_for(bot, "o_demo_gone")  # not following: web authorization still works
    assert (await bot.follow(lin)).content == f"你好，林老師！欢迎关注{ACCOUNT}。"
    href = (await bot.send_text(lin, "用微信昵称")).content or ""
    await consent(bot.session, link_in(href)[0], lin)
    # the authorized nickname beats the remark
    assert (await bot.send_text(lin, "你好")).content == f"你好，林曉！欢迎关注{ACCOUNT}。"
    # the typed name beats the authorized nickname
    await bot.send_text(lin, "叫我小林")
    assert (await bot.send_text(lin, "你好")).content == f"你好，小林！欢迎关注{ACCOUNT}。"
    # forgetting deletes both: back to the remark
    assert (await bot.send_text(lin, "忘记我的昵称")).content == "好的，我已经忘记你的昵称。"
    assert await stored(bot, lin) == Preferences(None, None, None)
    assert (await bot.send_text(lin, "你好")).content == f"你好，林老師！欢迎关注{ACCOUNT}。"
    # and for a follower with no remark: back to the name-less greeting with the link
    await consent(bot.session, await link_for(bot), WANG)
    assert (
        await bot.send_text(WANG, "forget my name")
    ).content == "Done: I've forgotten your name."
    reply = await bot.send_text(WANG, "你好")
    assert (reply.content or "").startswith(f"你好！欢迎关注{ACCOUNT}。\n<a href=")
    # an unfollow deletes everything
    await consent(bot.session, await link_for(bot), WANG)
    await bot.send_event(WANG, "unsubscribe")
    assert await stored(bot, WANG) == Preferences(None, None, None)
    assert href


# -- refusals: a clear page, a log line, nothing stored ------------------------------------------


async def test_a_tampered_state_is_refused_before_any_call(
    wechat_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await wechat_bot(web_authorization=True)
    href = await link_for(bot)
    location = await callback_url(bot.session, href, WANG)
    state = state_of(href)
    flipped = state[:-1] + ("0" if state[-1] != "0" else "1")
    for bad in (flipped, state[:-2], "A" * 74, "", "x" * 129, "%00", state + "0"):
        page = await open_page(
            bot.session, location.replace(state, bad) if bad else location.split("&state")[0]
        )
        assert page.status == 400, bad
        assert "链接无效" in page.text
    assert bot.fake.counters["sns_access_token"] == 0
    assert await stored(bot, WANG) == Preferences()
    assert "callback refused: forged state" in caplog.text
    # the genuine one still works afterwards
    assert (await open_page(bot.session, location)).status == 200


async def test_an_expired_state_is_refused(
    wechat_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await wechat_bot(web_authorization=True)
    old = signer_of(bot.config, clock=1_000_000_000.0).issue(WANG, "en")
    code = bot.fake.oauth.issue_code(WANG)
    page = await open_page(
        bot.session,
        f"{CALLBACK_PATH}?code={code}&state={old}".join([str(bot.client.make_url("")), ""]),
    )
    assert page.status == 400
    assert "This link has expired" in page.text
    assert bot.fake.counters["sns_access_token"] == 0
    assert await stored(bot, WANG) == Preferences()
    assert "expired state" in caplog.text


async def test_a_reused_state_is_refused(
    wechat_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await wechat_bot(web_authorization=True)
    location = await callback_url(bot.session, await link_for(bot), WANG)
    assert (await open_page(bot.session, location)).status == 200
    await bot.send_text(WANG, "忘记我的昵称")
    replay = await open_page(bot.session, location)
    assert replay.status == 400 and "链接已用过" in replay.text
    # the same state with a fresh code: still refused, the code never exchanged
    code = bot.fake.oauth.issue_code(WANG)
    fresh = re.sub(r"code=[^&]+", f"code={code}", location)
    assert (await open_page(bot.session, fresh)).status == 400
    assert bot.fake.counters["sns_access_token"] == 1
    assert await stored(bot, WANG) == Preferences()
    assert "state already used" in caplog.text


async def test_a_code_used_twice_is_refused_by_the_platform(
    wechat_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await wechat_bot(web_authorization=True)
    code = bot.fake.oauth.issue_code(WANG)
    signer = signer_of(bot.config)
    base = str(bot.client.make_url(CALLBACK_PATH))
    first = await open_page(bot.session, f"{base}?code={code}&state={signer.issue(WANG, 'zh_CN')}")
    assert first.status == 200
    await bot.send_text(WANG, "忘记我的昵称")
    second = await open_page(bot.session, f"{base}?code={code}&state={signer.issue(WANG, 'zh_CN')}")
    assert second.status == 400 and "授权没有完成" in second.text
    assert "code exchange failed: errcode 40163" in caplog.text
    invalid = await open_page(
        bot.session, f"{base}?code=nonsense&state={signer.issue(WANG, 'zh_CN')}"
    )
    assert invalid.status == 400
    assert "code exchange failed: errcode 40029" in caplog.text
    assert await stored(bot, WANG) == Preferences()


async def test_deny_gives_a_friendly_page_and_stores_nothing(
    wechat_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bot = await wechat_bot(web_authorization=True)
    page = await consent(bot.session, await link_for(bot), WANG, decision="deny")
    assert page.status == 200
    assert "没关系" in page.text and "code=" not in page.url
    assert bot.fake.counters["sns_access_token"] == 0
    assert await stored(bot, WANG) == Preferences()
    assert "declined consent" in caplog.text


async def test_a_snapshot_page_user_gets_a_friendly_page_and_nothing_is_stored(
    wechat_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bot = await wechat_bot(web_authorization=True)
    page = await consent(bot.session, await link_for(bot), WANG, snapshot=True)
    assert page.status == 200 and "还差一步" in page.text and "使用完整服务" in page.text
    assert bot.fake.counters["sns_userinfo"] == 0
    assert await stored(bot, WANG) == Preferences()
    assert "snapshot-page user" in caplog.text


async def test_an_userinfo_errcode_stores_nothing(
    wechat_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await wechat_bot(web_authorization=True)
    bot.fake.fail_with_errcode("sns_userinfo", 48001)
    page = await consent(bot.session, await link_for(bot), WANG)
    assert page.status == 502 and "暂时无法完成" in page.text
    assert "sns/userinfo failed: errcode 48001" in caplog.text
    assert await stored(bot, WANG) == Preferences()


async def test_an_unreachable_platform_is_a_502_page(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(web_authorization=True)
    bot.fake.fail_with_status("sns_access_token", 503)
    page = await consent(bot.session, await link_for(bot), WANG)
    assert page.status == 502
    assert await stored(bot, WANG) == Preferences()


async def test_another_followers_openid_is_refused(
    wechat_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await wechat_bot(web_authorization=True)
    href = await link_for(bot)  # sent to o_demo_wang, opened by Alice
    page = await consent(bot.session, href, "o_demo_alice")
    assert page.status == 403 and "不是发给你的链接" in page.text
    assert bot.fake.counters["sns_userinfo"] == 0
    assert await stored(bot, WANG) == Preferences()
    assert await stored(bot, "o_demo_alice") == Preferences()
    assert "not the one the link was for" in caplog.text


@pytest.mark.parametrize(
    "query",
    [
        "",
        "code=abc",
        "state=" + "f" * 5000,
        "code=" + "a" * 300 + "&state=1",
        "code=%ff%fe&state=%ff",
        "state=1&state=2&code=a",
    ],
)
async def test_odd_callbacks_are_4xx_never_500(wechat_bot: BotFactory, query: str) -> None:
    bot = await wechat_bot(web_authorization=True)
    async with bot.client.get(f"{CALLBACK_PATH}?{query}") as response:
        assert 400 <= response.status < 500
        assert response.headers["Content-Type"].startswith("text/html")
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "script" not in (await response.text()).lower()


# -- durable: after a restart, and on a second instance sharing Redis ---------------------------


async def serve_again(
    config: Config, port: int | None = None
) -> tuple[TestClient[Any, Any], WeChatSimulator]:
    """Another app from `config` on `port` (any when None), and a simulator signing pushes to it."""
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(config), port=port))
    await client.start_server()
    simulator = WeChatSimulator(
        client.session, str(client.make_url(config.webhook_path)), token=config.token
    )
    return client, simulator


async def test_the_nickname_survives_a_restart(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(web_authorization=True)
    assert (await consent(bot.session, await link_for(bot), WANG)).status == 200
    await bot.client.close()  # the embedded store's SQLite file is closed with the app
    client, simulator = await serve_again(bot.config)
    try:
        reply = await simulator.send_text(WANG, "你好")
        assert reply.content == f"你好，{NICKNAME}！欢迎关注{ACCOUNT}。"
    finally:
        await client.close()


async def test_a_second_instance_on_redis_greets_by_the_nickname(
    wechat_bot: BotFactory, redis_url: str
) -> None:
    fake = FakeWeChat(app_id=f"wx_webauth_{uuid.uuid4().hex[:8]}", app_secret="fake_secret")
    try:
        first = await wechat_bot(fake=fake, web_authorization=True, redis_url=redis_url)
        client, second = await serve_again(first.config)
        try:
            # the link from one instance, the callback on it, the greeting on the other
            href = await link_for(first)
            location = await callback_url(first.session, href, WANG)
            assert (await open_page(first.session, location)).status == 200
            reply = await second.send_text(WANG, "你好")
            assert reply.content == f"你好，{NICKNAME}！欢迎关注{ACCOUNT}。"
            # the state's single use holds across instances: a replay on the second is refused
            public = first.config.web_authorization.public_url
            on_second = location.replace(public, str(client.make_url("")).rstrip("/"))
            assert on_second != location
            replay = await open_page(second.session, on_second)
            assert replay.status == 400 and "链接已用过" in replay.text
        finally:
            await client.close()
    finally:
        await delete_namespace(redis_url, f"wechat-bot:{fake.app_id}")


async def test_the_served_process_routes_the_callback_past_the_fast_path(tmp_path: Path) -> None:
    fake = FakeWeChat(app_id="wx_fake_app", app_secret="fake_secret")
    env = {"BOT_WEB_AUTHORIZATION": "true", "BOT_PUBLIC_URL": "https://bot.example.com"}
    async with served_bot(fake, tmp_path, **env) as served:
        reply = await served.simulator().send_text(WANG, "用微信昵称")
        href, _ = link_in(reply.content)
        assert "redirect_uri=https%3A%2F%2Fbot.example.com%2Foauth%2Fcallback" in href
        state = state_of(href)
        forged = state[:-1] + ("0" if state[-1] != "0" else "1")
        async with served.session.get(
            f"{served.base}{CALLBACK_PATH}", params={"state": forged, "code": "c"}
        ) as response:
            assert response.status == 400
            assert "链接无效" in await response.text()
        assert "callback refused: forged state" in served.log()
