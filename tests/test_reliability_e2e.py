"""Every message answered once, in time: the reply budget, retries, upstream faults, shutdown."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import sample_handlers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import served_bot

from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import TEST_TOKEN, BotFactory, BotUnderTest
from bot.testing.simulator import text_fields
from bot.wechat.signature import sha1_signature

SAMPLES = ["sample_handlers", "handlers.greeting"]


async def _wait_for(predicate: object, timeout: float) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_slow_handler_with_wechat_retries_is_answered_in_time_and_sent_once(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    """WeChat's real timing: a 6 s handler, three tries 5 s apart."""
    bot = await wechat_bot(handlers=SAMPLES)
    fields = text_fields("o_demo_wang", "slow 6", msg_id="880001")
    loop = asyncio.get_running_loop()
    durations = []
    for attempt in range(3):
        started = loop.time()
        reply = await bot.send_fields(fields)
        durations.append(loop.time() - started)
        assert reply.is_success, f"try {attempt + 1}: {reply.body}"
        if attempt < 2:
            await asyncio.sleep(max(0.0, 5.0 - (loop.time() - started)))
    assert all(d < 5.0 for d in durations), durations
    await _wait_for(lambda: len(fake_wechat.sent) >= 1, 5.0)
    await asyncio.sleep(0.3)
    assert fake_wechat.sent == [
        {"touser": "o_demo_wang", "msgtype": "text", "text": {"content": "done after 6s"}}
    ]
    assert sample_handlers.calls["880001"] == 1


async def test_retry_during_a_late_handler_answers_success_without_running_it_again(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    bot = await wechat_bot(handlers=SAMPLES, reply_budget=0.3, profile_timeout=0.1)
    fields = text_fields("o_demo_wang", "slow 1.0", msg_id="880002")
    replies = [await bot.send_fields(fields) for _ in range(3)]
    assert all(r.is_success for r in replies)
    await _wait_for(lambda: len(fake_wechat.sent) == 1, 5.0)
    assert sample_handlers.calls["880002"] == 1
    assert fake_wechat.sent[0]["text"] == {"content": "done after 1.0s"}


async def test_same_msgid_three_times_concurrently_runs_the_handler_once(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot(handlers=SAMPLES)
    fields = text_fields("o_demo_wang", "slow 0.3", msg_id="880003")
    replies = await asyncio.gather(*(bot.send_fields(fields) for _ in range(3)))
    assert {r.content for r in replies} == {"done after 0.3s"}
    assert sample_handlers.calls["880003"] == 1


async def test_same_msgid_three_times_in_sequence_gives_identical_bodies(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot(handlers=SAMPLES)
    fields = text_fields("o_demo_wang", "slow 0.1", msg_id="880004")
    replies = [await bot.send_fields(fields) for _ in range(3)]
    bodies = {r.body for r in replies}
    assert len(bodies) == 1 and "done after 0.1s" in bodies.pop()
    assert sample_handlers.calls["880004"] == 1


async def test_events_are_deduplicated_by_sender_time_and_event(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    fields = {
        "ToUserName": "gh",
        "FromUserName": "o_demo_wang",
        "CreateTime": int(time.time()),
        "MsgType": "event",
        "Event": "subscribe",
    }
    first = await bot.send_fields(fields)
    second = await bot.send_fields(fields)
    assert first.body == second.body
    metrics = await (await bot.client.get("/metrics")).text()
    assert "wechat_bot_dedup_hits_total 1.0" in metrics


async def test_greeting_survives_token_and_transport_faults(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    bot = await wechat_bot(api_timeout=1.0)
    assert (await bot.follow("o_demo_alice")).content == "Hello, Alice! Welcome to Test Account."
    fake_wechat.expire_tokens()
    fake_wechat.fail_with_status("user_info", 502, times=2)
    fake_wechat.reset_connection("user_info", times=1)
    bot2 = await wechat_bot(api_timeout=1.0)  # a fresh profile cache, the same platform
    reply = await bot2.follow("o_demo_alice")
    assert reply.content == "Hello, Alice! Welcome to Test Account."


async def test_token_rejected_once_is_refreshed_and_the_call_retried(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    bot = await wechat_bot()
    fake_wechat.fail_with_errcode("user_info", 40001, times=1)
    assert (await bot.follow("o_demo_alice")).content == "Hello, Alice! Welcome to Test Account."
    assert fake_wechat.counters["user_info"] == 2


async def test_late_reply_refused_by_the_platform_is_logged_not_lost_silently(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    bot = await wechat_bot(handlers=SAMPLES, reply_budget=0.2, profile_timeout=0.1)
    fake_wechat.fail_with_errcode("custom_send", 43004, times=1)
    assert (await bot.send_text("o_demo_wang", "slow 0.5", msg_id="880005")).is_success
    await _wait_for(lambda: fake_wechat.counters["custom_send"] == 1, 5.0)
    await asyncio.sleep(0.2)
    assert fake_wechat.sent == []
    metrics = await (await bot.client.get("/metrics")).text()
    assert 'wechat_bot_customer_service_deliveries_total{outcome="dropped"} 1.0' in metrics


async def test_late_reply_over_the_window_waits_for_the_next_message(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    """45015 (reply window passed): the follower's next message reopens it and carries it."""
    bot = await wechat_bot(handlers=SAMPLES, reply_budget=0.2, profile_timeout=0.1)
    fake_wechat.fail_with_errcode("custom_send", 45015, times=1)
    assert (await bot.send_text("o_demo_wang", "slow 0.5", msg_id="880015")).is_success
    await _wait_for(lambda: fake_wechat.counters["custom_send"] == 1, 5.0)
    await asyncio.sleep(0.2)
    assert fake_wechat.sent == []
    metrics = await (await bot.client.get("/metrics")).text()
    assert 'wechat_bot_customer_service_deliveries_total{outcome="pending"} 1.0' in metrics
    reply = await bot.send_text("o_demo_wang", "slow 0", msg_id="880016")
    assert reply.content == "done after 0.5s\n\ndone after 0s"
    assert (await bot.send_text("o_demo_wang", "slow 0", msg_id="880017")).content == (
        "done after 0s"
    )
    assert fake_wechat.sent == []


async def test_transient_customer_service_failures_are_retried(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    bot = await wechat_bot(handlers=SAMPLES, reply_budget=0.2, profile_timeout=0.1)
    fake_wechat.fail_with_errcode("custom_send", -1, times=4)
    assert (await bot.send_text("o_demo_wang", "slow 0.3", msg_id="880006")).is_success
    await _wait_for(lambda: len(fake_wechat.sent) == 1, 10.0)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
async def test_random_bodies_never_produce_a_500(wechat_bot: BotFactory, body: bytes) -> None:
    bot = await _fuzz_bot(wechat_bot)
    ts, nonce = str(int(time.time())), str(time.perf_counter_ns())
    params = {"signature": sha1_signature(TEST_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
    async with bot.client.post("/wechat", params=params, data=body) as resp:
        assert resp.status < 500


_fuzz_cache: dict[int, object] = {}


async def _fuzz_bot(factory: BotFactory) -> BotUnderTest:
    # one bot per test function run (hypothesis calls the body many times with the same fixture)
    key = id(factory)
    found = _fuzz_cache.get(key)
    if found is None:
        found = await factory()
        _fuzz_cache.clear()
        _fuzz_cache[key] = found
    assert isinstance(found, BotUnderTest)
    return found


# -- graceful shutdown -------------------------------------------------------------------------


async def test_sigterm_during_a_slow_handler_still_delivers_before_exit(tmp_path: Path) -> None:
    fake = FakeWeChat()
    handlers = "sample_handlers,handlers.greeting"
    env = {"BOT_HANDLERS": handlers, "BOT_CONFIG": str(_config(tmp_path))}
    async with served_bot(fake, tmp_path, PYTHONPATH=str(Path(__file__).parent), **env) as bot:
        reply = await bot.simulator().send_text("o_demo_wang", "slow 2", msg_id="990001")
        assert reply.is_success  # the budget (0.5 s) passed
        assert await bot.stop() == 0
    assert fake.sent == [
        {"touser": "o_demo_wang", "msgtype": "text", "text": {"content": "done after 2s"}}
    ]


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "reply_budget: 0.5\nprofile_timeout: 0.2\nshutdown_grace: 10\n", encoding="utf-8"
    )
    return path
