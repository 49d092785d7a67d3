"""Late answers without the customer-service API: WeChat's retries carry them, else the
follower's next message does (through real HTTP against the fake platform)."""

from __future__ import annotations

import asyncio
import logging
import time

import late_handlers
import pytest

from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import BotFactory, BotUnderTest
from bot.testing.simulator import BotReply, text_fields

HANDLERS = ["late_handlers"]
WECHAT_WAITS = 5.0  # per try; three tries (platform notes §4)


async def wechat_tries(bot: BotUnderTest, openid: str, content: str, msg_id: str) -> list[object]:
    """WeChat's behaviour replayed: a try unanswered at 5 s is dropped and tried again, three
    tries in all. Per try: its reply, or None when dropped; and each try's duration."""
    fields = text_fields(openid, content, msg_id=msg_id)
    outcomes: list[object] = []
    for _ in range(3):
        started = time.monotonic()
        try:
            reply = await asyncio.wait_for(bot.send_fields(fields), WECHAT_WAITS)
        except TimeoutError:
            outcomes.append(None)
            continue
        outcomes.append((reply, time.monotonic() - started))
        break
    return outcomes


def answered(outcome: object) -> BotReply:
    assert isinstance(outcome, tuple), outcome
    reply = outcome[0]
    assert isinstance(reply, BotReply)
    return reply


async def _wait_for(predicate: object, timeout: float) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def metric(bot: BotUnderTest, line: str) -> bool:
    return line in await (await bot.client.get("/metrics")).text()


async def test_a_7s_answer_rides_on_the_second_try(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=HANDLERS, customer_service="off")
    tries = await wechat_tries(bot, "o_demo_wang", "think 7", "990001")
    assert tries[0] is None
    assert len(tries) == 2
    assert answered(tries[1]).content == "thought for 7s"
    assert bot.fake.counters["custom_send"] == 0
    assert late_handlers.runs["990001"] == 1


async def test_a_12s_answer_rides_on_the_third_try(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=HANDLERS, customer_service="off")
    tries = await wechat_tries(bot, "o_demo_wang", "think 12", "990002")
    assert tries[:2] == [None, None]
    assert answered(tries[2]).content == "thought for 12s"
    assert bot.fake.counters["custom_send"] == 0
    assert late_handlers.runs["990002"] == 1


async def test_a_20s_answer_waits_for_the_next_message(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=HANDLERS, customer_service="off")
    tries = await wechat_tries(bot, "o_demo_wang", "think 20", "990003")
    assert tries[:2] == [None, None]
    assert answered(tries[2]).is_success
    assert isinstance(tries[2], tuple) and tries[2][1] < WECHAT_WAITS  # the last try in time
    await _wait_for(lambda: late_handlers.runs.get("990003") == 1, 1.0)
    await asyncio.sleep(20.5 - 2 * WECHAT_WAITS - tries[2][1])
    assert await metric(bot, 'wechat_bot_pending_answers_total{outcome="kept"} 1.0')
    reply = await bot.send_text("o_demo_wang", "hi", msg_id="990004")
    assert reply.content == "thought for 20s\n\nhello"
    assert (await bot.send_text("o_demo_wang", "hi", msg_id="990005")).content == "hello"
    assert await metric(bot, 'wechat_bot_pending_answers_total{outcome="given_passive"} 1.0')
    assert bot.fake.counters["custom_send"] == 0


async def test_auto_turns_the_api_off_on_48001_once_and_keeps_the_answer(
    wechat_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeWeChat(verified=False)
    bot = await wechat_bot(handlers=HANDLERS, fake=fake, reply_budget=0.3, profile_timeout=0.1)
    health = await (await bot.client.get("/healthz")).json()
    assert health["customer_service"] == "on"
    with caplog.at_level(logging.WARNING, logger="bot.webhook.customer_service"):
        assert (await bot.send_text("o_demo_wang", "think 0.6", msg_id="990011")).is_success
        await _wait_for(lambda: fake.counters["custom_send"] == 1, 3.0)
        await asyncio.sleep(0.2)
        # the account is now known to have no API: the next slow answer holds the try
        second = await bot.send_text("o_demo_wang", "think 0.6", msg_id="990012")
    assert second.content == "thought for 0.6s\n\nthought for 0.6s"
    assert fake.counters["custom_send"] == 1
    assert fake.sent == []
    lines = [r for r in caplog.records if "48001" in r.getMessage()]
    assert len(lines) == 1
    health = await (await bot.client.get("/healthz")).json()
    assert health["customer_service"].startswith("off (48001")


async def test_a_waiting_image_goes_first_and_the_text_after_it(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot(
        handlers=HANDLERS, customer_service="off", reply_budget=0.3, profile_timeout=0.1
    )
    # one try only, answered `success` past its hold: the image must wait
    held = await bot.send_fields(text_fields("o_demo_wang", "draw 3", msg_id="990021"))
    assert held.is_success
    await _wait_for(lambda: late_handlers.runs.get("990021") == 1, 1.0)
    await asyncio.sleep(1.0)
    reply = await bot.send_text("o_demo_wang", "hi", msg_id="990022")
    assert reply.msg_type == "image"
    assert reply.fields["Image"]["MediaId"] == "MEDIA_DRAWN"
    # the message's own answer waited behind it
    told = await bot.send_text("o_demo_wang", "hi", msg_id="990023")
    assert told.content == "hello\n\nhello"


async def test_the_follower_is_told_in_their_language_that_more_waits(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot(
        handlers=HANDLERS, customer_service="off", reply_budget=0.3, profile_timeout=0.1
    )
    for n, content in enumerate(("think 2.5", "draw 2.5")):
        held = await bot.send_fields(text_fields("o_demo_li", content, msg_id=f"99004{n}"))
        assert held.is_success
    await asyncio.sleep(1.0)
    # no handler answers this one; it is written in Chinese, so the note is too
    reply = await bot.send_text("o_demo_li", "你好", msg_id="990049")
    assert reply.content == "thought for 2.5s\n\n（还有 1 条回复，发送任意消息即可收到）"
    assert (await bot.send_text("o_demo_li", "hi", msg_id="990050")).msg_type == "image"
    assert (await bot.send_text("o_demo_li", "hi", msg_id="990051")).content == ("hello\n\nhello")


async def test_waiting_answers_expire_and_are_counted(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(
        handlers=HANDLERS,
        customer_service="off",
        reply_budget=0.3,
        profile_timeout=0.1,
        pending_ttl=0.5,
    )
    held = await bot.send_fields(text_fields("o_demo_wang", "think 3", msg_id="990031"))
    assert held.is_success
    await asyncio.sleep(1.0 + 0.6)
    assert await metric(bot, 'wechat_bot_pending_answers_total{outcome="kept"} 1.0')
    assert (await bot.send_text("o_demo_wang", "hi", msg_id="990032")).content == "hello"
    assert await metric(bot, 'wechat_bot_pending_answers_total{outcome="expired"} 1.0')
