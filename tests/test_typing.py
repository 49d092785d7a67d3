"""The typing indicator: shown for a handler running past a second, refreshed within its 15-s
life, never for a fast answer, never without the customer-service API."""

from __future__ import annotations

import asyncio
from typing import cast

from bot.client.api import WeChatAPI, WeChatAPIError
from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import BotFactory
from bot.webhook.customer_service import CustomerServiceSwitch
from bot.webhook.typing import TypingIndicator

HANDLERS = ["late_handlers"]


async def test_a_slow_handler_shows_typing_after_a_second_and_a_fast_one_never(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    bot = await wechat_bot(handlers=HANDLERS)
    assert (await bot.send_text("o_demo_wang", "hi", msg_id="992001")).content == "hello"
    assert (await bot.send_text("o_demo_wang", "think 0.5", msg_id="992002")).content == (
        "thought for 0.5s"
    )
    await asyncio.sleep(0.8)
    assert fake_wechat.typing == []
    slow = asyncio.create_task(bot.send_text("o_demo_wang", "think 2", msg_id="992003"))
    await asyncio.sleep(1.5)
    assert [(openid, command) for _, openid, command in fake_wechat.typing] == [
        ("o_demo_wang", "Typing")
    ]
    assert (await slow).content == "thought for 2s"
    await asyncio.sleep(0.3)
    assert len(fake_wechat.typing) == 1


async def test_no_typing_without_the_customer_service_api(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    bot = await wechat_bot(handlers=HANDLERS, customer_service="off")
    assert (await bot.send_text("o_demo_wang", "think 1.5", msg_id="992011")).content == (
        "thought for 1.5s"
    )
    assert fake_wechat.counters["custom_typing"] == 0


async def test_an_unverified_account_turns_the_api_off_from_its_typing_refusal(
    wechat_bot: BotFactory,
) -> None:
    fake = FakeWeChat(verified=False)
    bot = await wechat_bot(handlers=HANDLERS, fake=fake)
    assert (await bot.send_text("o_demo_wang", "think 1.5", msg_id="992021")).content == (
        "thought for 1.5s"
    )
    assert fake.counters["custom_typing"] == 1
    health = await (await bot.client.get("/healthz")).json()
    assert health["customer_service"].startswith("off (48001")


class StubAPI:
    def __init__(self, errcode: int = 0) -> None:
        self.calls: list[str] = []
        self.errcode = errcode

    async def typing(self, openid: str, typing: bool = True) -> None:
        self.calls.append(openid)
        if self.errcode:
            raise WeChatAPIError(self.errcode, "refused", "message_custom_typing")


async def test_the_indicator_is_refreshed_while_the_handler_runs_and_bounded() -> None:
    api = StubAPI()
    outcomes: list[str] = []
    indicator = TypingIndicator(
        cast(WeChatAPI, api),
        CustomerServiceSwitch("auto"),
        delay=0.01,
        refresh=0.05,
        max_shows=4,
        observe=outcomes.append,
    )
    finished = False
    indicator.watch("o1", lambda: finished)
    await asyncio.sleep(0.13)
    assert len(api.calls) == 3  # at 0.01, 0.06, 0.11
    finished = True
    await asyncio.sleep(0.1)
    assert len(api.calls) == 3
    assert outcomes == ["shown"] * 3
    indicator.watch("o2", lambda: False)
    await asyncio.sleep(0.4)
    assert api.calls.count("o2") == 4


async def test_a_48001_stops_the_indicator() -> None:
    api = StubAPI(48001)
    switch = CustomerServiceSwitch("auto")
    indicator = TypingIndicator(cast(WeChatAPI, api), switch, delay=0.01, refresh=0.02)
    indicator.watch("o1", lambda: False)
    await asyncio.sleep(0.1)
    assert api.calls == ["o1"]
    assert not switch.available
