"""The example handlers in `handlers/`, end to end: each answers its own messages, in the
follower's language, and leaves everything else to the greeting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.demo.terminal import SCRIPT
from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import BotFactory, BotUnderTest
from bot.testing.simulator import BotReply, next_msg_id
from bot.webhook.services import SERVICES
from handlers import slow

SHIPPED = Path(__file__).resolve().parents[1] / "config.yaml"

CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
ACCOUNT = "Test Account"


async def _wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _send_media(bot: BotUnderTest, openid: str, msg_type: str, **fields: Any) -> BotReply:
    return await bot.send_fields(
        {
            "ToUserName": bot.account,
            "FromUserName": openid,
            "CreateTime": int(time.time()),
            "MsgType": msg_type,
            "MsgId": next_msg_id(),
            **fields,
        }
    )


# keywords


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "weather Paris",
            "[demo] Paris: sunny, 25°C. A canned answer: no real forecast was looked up.",
        ),
        ("天气 北京", "【演示】北京：晴，25°C。这是示例回复，并没有查询真实天气。"),
        ("天氣  台北 ", "【示範】台北：晴，25°C。這是示例回覆，並沒有查詢真實天氣。"),
    ],
)
async def test_weather_captures_the_city_in_three_languages(
    wechat_bot: BotFactory, text: str, expected: str
) -> None:
    bot = await wechat_bot(handlers=["handlers.keywords", "handlers.greeting"])
    assert (await bot.send_text("o_demo_wang", text)).content == expected


@pytest.mark.parametrize(
    ("text", "first_line", "commands"),
    [
        ("help", "I understand:", ["weather Paris", "call me Sam (叫我…)", "language en", "human"]),
        ("帮助", "我能听懂：", ["天气 北京", "叫我小王", "language en", "人工", "报告"]),
        ("幫助", "我能聽懂：", ["天氣 台北", "叫我小王", "language en", "人工", "報告"]),
    ],
)
async def test_help_lists_the_commands_in_three_languages(
    wechat_bot: BotFactory, text: str, first_line: str, commands: list[str]
) -> None:
    bot = await wechat_bot(handlers=["handlers.keywords", "handlers.greeting"])
    content = (await bot.send_text("o_demo_wang", text)).content
    assert content is not None and content.splitlines()[0] == first_line
    for command in commands:
        assert command in content


@pytest.mark.parametrize(
    ("text", "greeting"),
    [
        ("weather", f"Hello! Welcome to {ACCOUNT}."),
        ("helpful", f"Hello! Welcome to {ACCOUNT}."),
        ("weather in\nParis", f"Hello! Welcome to {ACCOUNT}."),
        ("天气真好啊", f"你好！欢迎关注{ACCOUNT}。"),
    ],
)
async def test_near_misses_fall_through_to_the_greeting(
    wechat_bot: BotFactory, text: str, greeting: str
) -> None:
    bot = await wechat_bot(handlers=["handlers.keywords", "handlers.greeting"])
    assert (await bot.send_text("o_demo_wang", text)).content == greeting


async def test_the_shipped_config_plays_the_demo_script_like_the_greeting_alone(
    wechat_bot: BotFactory,
) -> None:
    full = await wechat_bot(config_file=CONFIG)
    assert full.config.handlers[-1] == "handlers.greeting"
    assert len(full.config.handlers) == 7
    alone = await wechat_bot(config_file=CONFIG, handlers=["handlers.greeting"])
    transcripts: list[list[str | None]] = []
    for bot in (full, alone):
        lines: list[str | None] = []
        for line in SCRIPT:
            reply = await (
                bot.follow("o_demo_wang")
                if line == "/follow"
                else bot.send_text("o_demo_wang", line)
            )
            lines.append(reply.content)
        transcripts.append(lines)
    assert transcripts[0] == transcripts[1]
    assert transcripts[0][-1] == "Hello, 小王! Welcome to Demo Account."


# menu


async def test_every_click_button_of_the_shipped_menu_is_answered(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot(handlers=["handlers.menu", "handlers.greeting"], config_file=SHIPPED)
    assert bot.config.menu is not None and bot.config.menu.default is not None
    keys = [b.key for _, b in bot.config.menu.default.keyed_buttons()]
    assert keys == ["MENU_ABOUT", "MENU_POSTER", "MENU_CONTACT"]
    kinds = [(await bot.send_event("o_demo_wang", "CLICK", key)).msg_type for key in keys]
    assert kinds == ["text", "image", "text"]


async def test_menu_answers_in_the_followers_language(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=["handlers.menu", "handlers.greeting"])
    about = await bot.send_event("o_demo_wang", "CLICK", "MENU_ABOUT")
    assert about.content is not None and about.content.startswith(f"{ACCOUNT} 是一个演示公众号")
    # Alice's old-style profile still says "en"
    contact = await bot.send_event("o_demo_alice", "click", "MENU_CONTACT")
    assert contact.content is not None and contact.content.startswith("Contact us")


async def test_view_and_unknown_clicks_answer_success(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=["handlers.menu", "handlers.greeting"])
    assert (await bot.send_event("o_demo_wang", "VIEW", "https://example.com/")).is_success
    assert (await bot.send_event("o_demo_wang", "CLICK", "MENU_NOPE")).is_success


# qrcode


async def test_follow_through_a_campaign_code_is_welcomed_and_remembered(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot(handlers=["handlers.qrcode", "handlers.greeting"])
    reply = await bot.follow("o_demo_wang", scene="spring_fair")
    assert reply.content == "欢迎！你通过「春季展会」的二维码关注了我们。发送“帮助”看看我能做什么。"
    scan = await bot.send_event("o_demo_wang", "SCAN", "store_42", Ticket="T")
    assert scan.content == "欢迎回来！这是「42 号门店」的二维码。"
    state = bot.app[SERVICES].followers.state("o_demo_wang")
    assert await state.get("source") == "spring_fair"  # the first source is kept


async def test_scan_by_an_existing_follower_records_the_source_in_english(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot(handlers=["handlers.qrcode", "handlers.greeting"])
    scan = await bot.send_event("o_demo_alice", "SCAN", "store_42", Ticket="T")
    assert scan.content == "Welcome back! This is the Store 42 QR code."
    assert await bot.app[SERVICES].followers.state("o_demo_alice").get("source") == "store_42"


async def test_unknown_scene_or_plain_follow_gets_the_greeting(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=["handlers.qrcode", "handlers.greeting"])
    assert (await bot.follow("o_demo_wang", scene="nope")).content == f"你好！欢迎关注{ACCOUNT}。"
    assert (await bot.follow("o_demo_lin")).content == f"你好，林老師！欢迎关注{ACCOUNT}。"
    assert (await bot.send_event("o_demo_wang", "SCAN", "nope")).is_success
    assert await bot.app[SERVICES].followers.state("o_demo_wang").get("source") is None


# media


async def test_an_image_comes_back_as_the_same_image(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=["handlers.media", "handlers.greeting"])
    reply = await _send_media(bot, "o_demo_wang", "image", PicUrl="http://p/1.jpg", MediaId="M1")
    assert reply.msg_type == "image"
    assert reply.fields["Image"] == {"MediaId": "M1"}


@pytest.mark.parametrize(
    ("recognition", "expected"),
    [
        ("今天天气怎么样", "我听到的是：「今天天气怎么样」"),
        ("what time is it", 'I heard: "what time is it"'),
        ("", "收到你的语音了，但没能识别出文字。发文字给我试试？"),
    ],
)
async def test_voice_is_answered_with_its_transcript(
    wechat_bot: BotFactory, recognition: str, expected: str
) -> None:
    bot = await wechat_bot(handlers=["handlers.media", "handlers.greeting"])
    reply = await _send_media(
        bot, "o_demo_wang", "voice", MediaId="V1", Format="amr", Recognition=recognition
    )
    assert reply.content == expected


# human


@pytest.mark.parametrize("text", ["人工", "人工客服", "human", "Agent!"])
async def test_asking_for_a_person_transfers_to_customer_service(
    wechat_bot: BotFactory, text: str
) -> None:
    bot = await wechat_bot(handlers=["handlers.human", "handlers.greeting"])
    reply = await bot.send_text("o_demo_wang", text)
    assert reply.msg_type == "transfer_customer_service"
    assert "TransInfo" not in reply.fields


async def test_a_sentence_mentioning_humans_is_not_a_transfer(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=["handlers.human", "handlers.greeting"])
    reply = await bot.send_text("o_demo_wang", "human rights")
    assert reply.content == f"Hello! Welcome to {ACCOUNT}."


# slow


async def test_slow_report_answers_success_then_arrives_by_customer_service(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slow, "REPORT_SECONDS", 1.0)
    bot = await wechat_bot(
        handlers=["handlers.slow", "handlers.greeting"], reply_budget=0.3, profile_timeout=0.1
    )
    reply = await bot.send_text("o_demo_wang", "报告")
    assert reply.is_success
    assert fake_wechat.sent == []  # not before the handler is done
    await _wait_for(lambda: len(fake_wechat.sent) >= 1, 10.0)
    await asyncio.sleep(0.2)  # and only once
    assert fake_wechat.sent == [
        {
            "touser": "o_demo_wang",
            "msgtype": "text",
            "text": {"content": "你的报告（演示）已生成：用时 1 秒，一切正常。"},
        }
    ]


async def test_a_report_within_the_budget_is_a_passive_reply(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slow, "REPORT_SECONDS", 0.0)
    bot = await wechat_bot(handlers=["handlers.slow", "handlers.greeting"])
    reply = await bot.send_text("o_demo_wang", "Report")
    assert reply.content == "Your (demo) report is ready: it took 0 s, and all is well."
    assert fake_wechat.sent == []
