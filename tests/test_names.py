"""The ways followers say their name, and the sentences that only look like it."""

from __future__ import annotations

import pytest

from bot.followers.names import NAME_QUESTION, NAME_STATEMENT, spoken_name
from bot.testing.pytest_plugin import BotFactory

ACCOUNT = "Test Account"


def name_in(text: str) -> str | None:
    """The name a message states, "" for a bare form, None for no name."""
    match = NAME_STATEMENT.match(text)
    return None if match is None else spoken_name(match["name"])


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("叫我小王", "小王"),
        ("请叫我小王", "小王"),
        ("請叫我小王", "小王"),
        ("我叫小王", "小王"),
        ("你可以叫我小王", "小王"),
        ("以后叫我小王吧", "小王"),
        ("以後叫我小王吧", "小王"),
        ("以后就叫我小王就好", "小王"),
        ("叫我老王就行，谢谢", "老王"),
        ("叫我阿明就好，謝謝", "阿明"),
        ("我的名字是王小明", "王小明"),
        ("叫我「小王」！", "小王"),
        ("call me Sam", "Sam"),
        ("Please call me Sam.", "Sam"),
        ("call me Sam, please", "Sam"),
        ("my name is Mary Ann", "Mary Ann"),
        ("my name's Sam", "Sam"),
        ("My name’s Sam!", "Sam"),
        ("I go by Sam", "Sam"),
        ("you can call me Sam, thanks", "Sam"),
        ("叫我", ""),
    ],
)
def test_the_common_forms_in_three_languages(text: str, name: str) -> None:
    assert name_in(text) == name


@pytest.mark.parametrize(
    "text",
    [
        "我叫了外卖",
        "叫我干嘛",
        "叫我干什么？",
        "叫我起床",
        "我叫他过来",
        "call me back",
        "call me when you can",
        "Call me later, please",
        "call me at 5",
        "call me if anything changes",
        "I go by the river every day and it is lovely",
    ],
)
def test_ordinary_sentences_are_not_names(text: str) -> None:
    assert name_in(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "我叫什么？",
        "我叫什么名字",
        "我叫什麼",
        "你叫我什么",
        "what's my name?",
        "What is my name",
        "what do you call me?",
    ],
)
def test_questions_about_the_name(text: str) -> None:
    assert NAME_QUESTION.match(text)


@pytest.mark.parametrize("text", ["我叫小王", "what's up", "my name is Sam"])
def test_statements_are_not_questions(text: str) -> None:
    assert NAME_QUESTION.match(text) is None


async def test_forms_end_to_end_and_sentences_get_the_greeting(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    assert (
        await bot.send_text("o_demo_wang", "以后叫我小王吧")
    ).content == "好的，以后就叫你小王。"
    assert (
        await bot.send_text("o_demo_wang", "我叫了外卖")
    ).content == f"你好，小王！欢迎关注{ACCOUNT}。"
    assert (
        await bot.send_text("o_demo_sam", "I go by Sam")
    ).content == "Got it. I'll call you Sam."
    reply = await bot.send_text("o_demo_sam", "call me back")
    assert reply.content == f"Hello, Sam! Welcome to {ACCOUNT}."


async def test_asking_for_the_name_answers_it_and_how_to_change_it(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    unknown = await bot.send_text("o_demo_wang", "我叫什么？")
    assert unknown.content == "我还不知道怎么称呼你。发送“叫我”加上名字，例如：叫我小王"
    await bot.send_text("o_demo_wang", "叫我小王")
    known = await bot.send_text("o_demo_wang", "我叫什么？")
    assert known.content is not None and known.content.startswith("我现在叫你小王。")
    assert "叫我" in known.content and "忘记我的昵称" in known.content
    remark = await bot.send_text("o_demo_lin", "what's my name?")
    assert remark.content is not None and remark.content.startswith("I call you 林老師.")
    nameless = await (await wechat_bot(web_authorization=True)).send_text(
        "o_demo_sam", "what's my name?"
    )
    assert nameless.content is not None and "<a href=" in nameless.content
