"""With Redis, pushes served by aiohttp (`handle_push`, the path without the fast path) keep every
promise of the batched path: one claim per push carries the nonce check, the dedup claim and the
sender's preferences, and a retry or a replay is recognised across bots sharing the Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import counting_handlers
import pytest
import redis_fixtures
from redis_fixtures import delete_namespace

from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import TEST_AES_KEY, TEST_TOKEN, BotFactory, BotUnderTest
from bot.testing.simulator import Mode, SignedRequest, build_xml, sign_request, text_fields
from bot.wechat.crypto import MessageCrypto

redis_url = redis_fixtures.redis_url

ACCOUNT = "Redis Account"


@pytest.fixture
async def account(redis_url: str) -> AsyncIterator[FakeWeChat]:
    """A fake account with an app id of its own, so its Redis namespace is this test's."""
    fake = FakeWeChat(app_id=f"wx_redis_{uuid.uuid4().hex[:12]}", app_secret="redis_secret")
    yield fake
    await delete_namespace(redis_url, f"wechat-bot:{fake.app_id}")


async def bots(
    wechat_bot: BotFactory, fake: FakeWeChat, redis_url: str, handlers: list[str], mode: Mode
) -> tuple[BotUnderTest, BotUnderTest]:
    """Two bots on one Redis (two instances), pushes through aiohttp."""
    started = []
    for _ in range(2):
        started.append(
            await wechat_bot(
                handlers=handlers,
                fake=fake,
                mode=mode,
                redis_url=redis_url,
                account_name=ACCOUNT,
            )
        )
    return started[0], started[1]


@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_a_name_set_through_one_bot_greets_on_the_other(
    wechat_bot: BotFactory, account: FakeWeChat, redis_url: str, mode: Mode
) -> None:
    one, two = await bots(wechat_bot, account, redis_url, ["handlers.greeting"], mode)
    openid = f"o_redis_{uuid.uuid4().hex[:8]}"
    assert (await one.send_text(openid, "叫我小周")).content == "好的，以后就叫你小周。"
    replies = await asyncio.gather(*(two.send_text(openid, "你好") for _ in range(5)))
    assert {r.content for r in replies} == {f"你好，小周！欢迎关注{ACCOUNT}。"}
    assert all(r.encrypted == (mode == "safe") for r in replies)


async def test_a_retry_on_the_other_bot_gets_the_same_answer_and_runs_nothing(
    wechat_bot: BotFactory, account: FakeWeChat, redis_url: str
) -> None:
    one, two = await bots(wechat_bot, account, redis_url, ["counting_handlers"], "plain")
    counting_handlers.received.clear()
    fields = text_fields(f"o_redis_{uuid.uuid4().hex[:8]}", "once", msg_id="880000001")
    first = await one.send_fields(fields)
    await asyncio.sleep(0.05)  # the answer is published off the push's critical path
    retries = [await two.send_fields(fields), await one.send_fields(fields)]
    assert first.content == "got once"
    assert [r.body for r in retries] == [first.body, first.body]
    assert counting_handlers.received == ["once"]


async def test_a_nonce_used_on_one_bot_is_refused_on_the_other_for_another_body(
    wechat_bot: BotFactory, account: FakeWeChat, redis_url: str
) -> None:
    one, two = await bots(wechat_bot, account, redis_url, ["counting_handlers"], "safe")
    crypto = MessageCrypto(TEST_AES_KEY, account.app_id)
    openid = f"o_redis_{uuid.uuid4().hex[:8]}"
    nonce = uuid.uuid4().hex[:10]

    def signed(text: str) -> SignedRequest:
        xml = build_xml(text_fields(openid, text))
        return sign_request(TEST_TOKEN, xml, mode="safe", crypto=crypto, nonce=nonce)

    accepted = await one.post(signed("first"))
    replayed = await two.post(signed("second"))
    assert accepted.content == "got first"
    assert (replayed.status, replayed.body) == (403, "nonce already used\n")
