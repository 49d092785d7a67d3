"""The greeting end to end: signed pushes over HTTP, the fake WeChat API behind the bot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.testing.fake_wechat import FakeFollower, FakeWeChat
from bot.testing.pytest_plugin import BotFactory

ACCOUNT = "Test Account"


async def test_follow_without_a_known_name_greets_in_the_default_language(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot()
    reply = await bot.follow("o_demo_wang")
    assert reply.msg_type == "text"
    assert reply.content == f"你好！欢迎关注{ACCOUNT}。"
    assert reply.fields["ToUserName"] == "o_demo_wang"
    assert reply.fields["FromUserName"] == "gh_test_account"


async def test_old_style_profile_gives_nickname_and_language(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    reply = await bot.follow("o_demo_alice")
    assert reply.content == f"Hello, Alice! Welcome to {ACCOUNT}."


async def test_operator_remark_is_the_name_when_nothing_else_is_known(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot()
    reply = await bot.follow("o_demo_lin")
    assert reply.content == f"你好，林老師！欢迎关注{ACCOUNT}。"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello there", f"Hello! Welcome to {ACCOUNT}."),
        ("這個怎麼樣", f"你好！歡迎關注{ACCOUNT}。"),
        ("这个怎么样", f"你好！欢迎关注{ACCOUNT}。"),
        ("你好", f"你好！欢迎关注{ACCOUNT}。"),  # script common to both: the default
    ],
)
async def test_language_follows_the_script_of_the_text(
    wechat_bot: BotFactory, text: str, expected: str
) -> None:
    bot = await wechat_bot()
    reply = await bot.send_text("o_demo_wang", text)
    assert reply.content == expected


async def test_default_language_setting_is_used(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(default_language="en")
    reply = await bot.follow("o_demo_wang")
    assert reply.content == f"Hello! Welcome to {ACCOUNT}."


async def test_a_follower_names_themselves_and_is_greeted_by_that_name(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot()
    confirm = await bot.send_text("o_demo_wang", "叫我小王")
    assert confirm.content == "好的，以后就叫你小王。"
    again = await bot.send_text("o_demo_wang", "你好")
    assert again.content == f"你好，小王！欢迎关注{ACCOUNT}。"
    # the follower's own name beats the old-style nickname
    await bot.send_text("o_demo_alice", "call me Ally")
    assert (
        await bot.send_text("o_demo_alice", "hi")
    ).content == f"Hello, Ally! Welcome to {ACCOUNT}."


@pytest.mark.parametrize(
    ("command", "confirmation"),
    [
        ("請叫我小王", "好的，以後就叫你小王。"),
        ("call me Sam", "Got it. I'll call you Sam."),
        ("Call me  Sam Smith!", "Got it. I'll call you Sam Smith."),
        ("叫我「小王」", "好的，以后就叫你小王。"),
    ],
)
async def test_name_commands_confirm_in_the_followers_language(
    wechat_bot: BotFactory, command: str, confirmation: str
) -> None:
    bot = await wechat_bot()
    assert (await bot.send_text("o_demo_sam", command)).content == confirmation


async def test_names_are_bounded_and_required(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    too_long = await bot.send_text("o_demo_sam", "call me " + "x" * 33)
    assert too_long.content is not None and "too long" in too_long.content
    exactly = await bot.send_text("o_demo_sam", "call me " + "y" * 32)
    assert exactly.content == "Got it. I'll call you " + "y" * 32 + "."
    empty = await bot.send_text("o_demo_wang", "叫我")
    assert empty.content is not None and "叫我小王" in empty.content


@pytest.mark.parametrize(
    ("command", "confirmation", "greeting"),
    [
        (
            "language en",
            "Got it. I'll speak English with you from now on.",
            f"Hello, 小王! Welcome to {ACCOUNT}.",
        ),
        (
            "语言 英文",
            "Got it. I'll speak English with you from now on.",
            f"Hello, 小王! Welcome to {ACCOUNT}.",
        ),
        ("語言 繁體", "好的，以後用繁體中文和你聊天。", f"你好，小王！歡迎關注{ACCOUNT}。"),
        ("language zh_TW", "好的，以後用繁體中文和你聊天。", f"你好，小王！歡迎關注{ACCOUNT}。"),
        ("语言 zh_CN", "好的，以后用简体中文和你聊天。", f"你好，小王！欢迎关注{ACCOUNT}。"),
    ],
)
async def test_language_commands_stick(
    wechat_bot: BotFactory, command: str, confirmation: str, greeting: str
) -> None:
    bot = await wechat_bot()
    await bot.send_text("o_demo_wang", "叫我小王")
    assert (await bot.send_text("o_demo_wang", command)).content == confirmation
    # the chosen language beats the script of later messages
    assert (await bot.send_text("o_demo_wang", "这个")).content == greeting
    assert (await bot.send_text("o_demo_wang", "hello")).content == greeting


async def test_unknown_language_gets_help_and_sentences_fall_through(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot()
    helped = await bot.send_text("o_demo_wang", "language xx")
    assert helped.content is not None and "zh_TW" in helped.content
    sentence = await bot.send_text("o_demo_wang", "language is a wonderful thing")
    assert sentence.content == f"Hello! Welcome to {ACCOUNT}."


async def test_not_following_follower_gets_the_nameless_greeting(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    reply = await bot.send_text("o_demo_gone", "你好")
    assert reply.content == f"你好！欢迎关注{ACCOUNT}。"


async def test_unsubscribe_deletes_the_followers_data(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    await bot.send_text("o_demo_wang", "叫我小王")
    gone = await bot.send_event("o_demo_wang", "unsubscribe")
    assert gone.is_success
    back = await bot.follow("o_demo_wang")
    assert back.content == f"你好！欢迎关注{ACCOUNT}。"


async def test_preferences_survive_a_restart(wechat_bot: BotFactory, tmp_path: Path) -> None:
    data = tmp_path / "shared-data"
    first = await wechat_bot(data_dir=str(data))
    await first.send_text("o_demo_wang", "叫我小王")
    await first.client.close()  # the first instance stops: the SQLite file must hold the name
    second = await wechat_bot(data_dir=str(data))
    assert (
        await second.send_text("o_demo_wang", "你好")
    ).content == f"你好，小王！欢迎关注{ACCOUNT}。"


async def test_greeting_templates_come_from_config(wechat_bot: BotFactory, tmp_path: Path) -> None:
    config = tmp_path / "custom.yaml"
    config.write_text(
        "account_name: Café\n"
        "greetings:\n"
        "  en:\n"
        "    with_name: 'Hi {name}, this is {account}'\n"
        "    without_name: 'Hi, this is {account}'\n",
        encoding="utf-8",
    )
    bot = await wechat_bot(config_file=config)
    assert (await bot.send_text("o_demo_wang", "hello")).content == "Hi, this is Café"
    assert (await bot.follow("o_demo_alice")).content == "Hi Alice, this is Café"


async def test_fifty_concurrent_first_messages_fetch_one_token(wechat_bot: BotFactory) -> None:
    fake = FakeWeChat(
        app_id="wx_fake_app",
        app_secret="fake_secret",
        followers=[FakeFollower(f"o_user_{i}") for i in range(50)],
    )
    bot = await wechat_bot(fake=fake)
    replies = await asyncio.gather(*(bot.send_text(f"o_user_{i}", "你好") for i in range(50)))
    assert all(r.content == f"你好！欢迎关注{ACCOUNT}。" for r in replies)
    assert fake.counters["stable_token"] == 1
    assert fake.counters["user_info"] == 50


async def test_twenty_concurrent_messages_from_one_follower_fetch_one_profile(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    bot = await wechat_bot()
    replies = await asyncio.gather(*(bot.send_text("o_demo_alice", "hello") for _ in range(20)))
    assert all(r.content == f"Hello, Alice! Welcome to {ACCOUNT}." for r in replies)
    assert fake_wechat.counters["user_info"] == 1


async def test_slow_profile_api_does_not_block_the_greeting(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.set_latency("user_info", 10.0)
    bot = await wechat_bot(profile_timeout=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await bot.send_text("o_demo_alice", "hello")
    assert reply.content == f"Hello! Welcome to {ACCOUNT}."
    assert loop.time() - started < bot.config.reply_budget


async def test_failing_profile_api_falls_back(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.fail_with_errcode("user_info", 48001, times=5)
    bot = await wechat_bot()
    assert (await bot.follow("o_demo_alice")).content == f"你好！欢迎关注{ACCOUNT}。"
