"""The customer-service quotas (platform notes §7): a handler's list of replies goes out within
them, and what is over them waits for the follower's next message."""

from __future__ import annotations

import asyncio
import time

from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import BotFactory

HANDLERS = ["late_handlers"]


def texts(fake: FakeWeChat) -> list[str]:
    return [str(m["text"]["content"]) for m in fake.sent]


async def _settle(fake: FakeWeChat, count: int) -> None:
    deadline = time.monotonic() + 5.0
    while len(fake.sent) < count:
        assert time.monotonic() < deadline, fake.sent
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)


async def test_seven_replies_to_a_text_are_one_passive_five_sent_and_one_waiting(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    bot = await wechat_bot(handlers=HANDLERS)
    fake_wechat.follower_wrote("o_demo_wang", "message")
    assert (await bot.send_text("o_demo_wang", "many 7", msg_id="993001")).content == "part 1"
    await _settle(fake_wechat, 5)
    assert texts(fake_wechat) == ["part 2", "part 3", "part 4", "part 5", "part 6"]
    assert fake_wechat.counters["custom_send"] == 5  # the quota counted, not learnt from 45047
    # the seventh waits for the next message, and rides on its passive reply
    fake_wechat.follower_wrote("o_demo_wang", "message")
    assert (await bot.send_text("o_demo_wang", "hi", msg_id="993002")).content == (
        "part 7\n\nhello"
    )
    await asyncio.sleep(0.3)
    assert len(fake_wechat.sent) == 5


async def test_seven_replies_to_a_menu_click_are_one_passive_three_sent_three_waiting(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    bot = await wechat_bot(handlers=HANDLERS)
    fake_wechat.follower_wrote("o_demo_wang", "event")
    clicked = await bot.send_event("o_demo_wang", "CLICK", "MANY")
    assert clicked.content == "part 1"
    await _settle(fake_wechat, 3)
    assert texts(fake_wechat) == ["part 2", "part 3", "part 4"]
    fake_wechat.follower_wrote("o_demo_wang", "message")
    reply = await bot.send_text("o_demo_wang", "hi", msg_id="993011")
    assert reply.content == "part 5\n\npart 6\n\npart 7\n\nhello"
    assert len(fake_wechat.sent) == 3


async def test_a_45047_from_the_platform_keeps_the_answer_for_the_next_message(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    bot = await wechat_bot(handlers=HANDLERS, reply_budget=0.3, profile_timeout=0.1)
    fake_wechat.fail_with_errcode("custom_send", 45047, times=1)
    assert (await bot.send_text("o_demo_wang", "think 0.6", msg_id="993021")).is_success
    await asyncio.sleep(0.8)
    assert fake_wechat.sent == []
    reply = await bot.send_text("o_demo_wang", "hi", msg_id="993022")
    assert reply.content == "thought for 0.6s\n\nhello"
