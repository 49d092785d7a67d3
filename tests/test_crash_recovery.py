"""Nothing accepted is lost: `SIGKILL` a real `wechat-bot serve` in the middle of a slow
answer, start again (same data dir, or another instance on the same Redis), and the answer
arrives exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis_fixtures
from redis_fixtures import delete_namespace
from support import ServedBot, served_bot

from bot.testing.fake_wechat import FakeWeChat
from bot.testing.simulator import text_fields

ROOT = Path(__file__).resolve().parents[1]
redis_url = redis_fixtures.redis_url

ENV = {
    "BOT_HANDLERS": "late_handlers",
    "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]),
    "LOG_FORMAT": "text",
}


def _thought(seconds: str) -> dict[str, object]:
    return {
        "touser": "o_demo_wang",
        "msgtype": "text",
        "text": {"content": f"thought for {seconds}s"},
    }


async def _wait_for_sent(
    fake: FakeWeChat, count: int, timeout: float, bot: ServedBot | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while len(fake.sent) < count:
        log = bot.log() if bot is not None else ""
        assert time.monotonic() < deadline, f"{len(fake.sent)} sent, {count} expected\n{log}"
        await asyncio.sleep(0.1)


@asynccontextmanager
async def _bot(fake: FakeWeChat, data: Path, **env: str) -> AsyncIterator[ServedBot]:
    async with served_bot(fake, data, **ENV, **env) as bot:
        yield bot


async def _kill_during(bot: ServedBot, content: str, msg_id: str, after: float) -> None:
    """Push `content`; it is answered `success` at the budget (4 s); SIGKILL `after` seconds
    after the push."""
    started = time.monotonic()
    reply = await bot.simulator().send_text("o_demo_wang", content, msg_id=msg_id)
    assert reply.is_success
    await asyncio.sleep(max(0.0, after - (time.monotonic() - started)))
    assert await bot.stop(signal.SIGKILL) == -signal.SIGKILL


async def test_sigkill_5s_into_a_6s_handler_then_restart_sends_the_answer_once(
    tmp_path: Path,
) -> None:
    fake = FakeWeChat()
    data = tmp_path / "data"
    data.mkdir()
    async with _bot(fake, data) as bot:
        await _kill_during(bot, "think 6", "991001", after=5.0)
    assert fake.counters["custom_send"] == 0
    async with _bot(fake, data) as bot:
        await _wait_for_sent(fake, 1, 15.0, bot)
        await asyncio.sleep(1.0)
        assert fake.sent == [_thought("6")]
        assert "handler late_handlers.think was cut short by a crash; running it again" in (
            bot.log()
        )
    # a third start finds nothing left to do
    async with _bot(fake, data):
        await asyncio.sleep(1.5)
    assert fake.sent == [_thought("6")]


async def test_a_send_failing_with_502_when_killed_is_delivered_once_after_restart(
    tmp_path: Path,
) -> None:
    fake = FakeWeChat()
    data = tmp_path / "data"
    data.mkdir()
    fake.fail_with_status("custom_send", 502, times=1000)
    async with _bot(fake, data) as bot:
        await _kill_during(bot, "think 4.5", "991002", after=6.5)
    assert fake.counters["custom_send"] >= 1
    assert fake.sent == []
    fake.reset()
    async with _bot(fake, data) as bot:
        await _wait_for_sent(fake, 1, 10.0, bot)
        await asyncio.sleep(1.0)
        assert fake.sent == [_thought("4.5")]
        assert "was computed before a crash; sending it" in bot.log()
        assert "running it again" not in bot.log()


async def test_a_handler_that_must_not_run_twice_is_dropped_with_a_log_line(
    tmp_path: Path,
) -> None:
    fake = FakeWeChat()
    data = tmp_path / "data"
    data.mkdir()
    async with _bot(fake, data) as bot:
        await _kill_during(bot, "pay 6", "991003", after=5.0)
    async with _bot(fake, data) as bot:
        await asyncio.sleep(2.0)
        log = bot.log()
    assert fake.counters["custom_send"] == 0
    assert "message 991003: handler late_handlers.pay was cut short by a crash; dropped" in log
    assert "rerun=False" in log


async def test_with_redis_another_instance_takes_over_once_the_lease_lapses(
    tmp_path: Path, redis_url: str
) -> None:
    fake = FakeWeChat(app_id=f"wx_crash_{uuid.uuid4().hex[:12]}")
    env = {"REDIS_URL": redis_url}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        async with _bot(fake, tmp_path / "a", **env) as second:
            async with _bot(fake, tmp_path / "b", **env) as first:
                await _kill_during(first, "think 6", "991004", after=5.0)
            await _wait_for_sent(fake, 1, 40.0, second)
            await asyncio.sleep(1.0)
            assert fake.sent == [_thought("6")]
            assert "running it again" in second.log()
    finally:
        await delete_namespace(redis_url, f"wechat-bot:{fake.app_id}")


async def test_the_served_fast_path_holds_wechat_s_tries_without_the_api(tmp_path: Path) -> None:
    """`wechat-bot serve` (its own HTTP path): try 1 dropped at 5 s, try 2 carries a 7-s
    answer."""
    fake = FakeWeChat(verified=False)
    data = tmp_path / "data"
    data.mkdir()
    async with _bot(fake, data, BOT_CUSTOMER_SERVICE="off") as bot:
        sim = bot.simulator()
        fields = text_fields("o_demo_wang", "think 7", msg_id="991101")
        try:
            await asyncio.wait_for(sim.send_fields(fields), 5.0)
            raise AssertionError("try 1 was answered; WeChat would not retry")
        except TimeoutError:
            pass
        reply = await asyncio.wait_for(sim.send_fields(fields), 5.0)
        assert reply.content == "thought for 7s"
        health = await (await bot.session.get(f"{bot.base}/healthz")).json()
        assert health["customer_service"] == "off"
    assert fake.counters["custom_send"] == 0


async def test_what_sigterm_s_grace_does_not_finish_is_answered_after_the_next_start(
    tmp_path: Path,
) -> None:
    fake = FakeWeChat()
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text("shutdown_grace: 1\n", encoding="utf-8")
    async with _bot(fake, data, BOT_CONFIG=str(config)) as bot:
        reply = await bot.simulator().send_text("o_demo_wang", "think 8", msg_id="991201")
        assert reply.is_success
        assert await bot.stop(signal.SIGTERM) == 0
        assert "stay in the journal for the next start" in bot.log()
    assert fake.counters["custom_send"] == 0
    async with _bot(fake, data, BOT_CONFIG=str(config)):
        await _wait_for_sent(fake, 1, 15.0)
        await asyncio.sleep(1.0)
    assert fake.sent == [_thought("8")]
