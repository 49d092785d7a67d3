"""WeChat's retries of a message whose handler waits, through `wechat-bot serve` as shipped.

Pins a bug seen on Python 3.12+ with the fast path: a retry arriving while the first try's
handler still ran got `success` instead of the reply, with `RuntimeError: Timeout should be
used inside a task` (the ledger's wait ran in a coroutine stepped outside any task).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support import served_bot

from bot.testing.fake_wechat import FakeWeChat
from bot.testing.simulator import text_fields

TESTS = Path(__file__).parent


@pytest.mark.parametrize("fast_path", [True, False])
async def test_a_retry_of_a_waiting_handler_gets_the_remembered_reply(
    tmp_path: Path, fast_path: bool
) -> None:
    env = {"BOT_FAST_PATH": str(fast_path).lower(), "BOT_HANDLERS": "sample_handlers"}
    async with served_bot(FakeWeChat(), tmp_path, PYTHONPATH=str(TESTS), **env) as bot:
        sim = bot.simulator()
        fields = text_fields("o_test_retry", "slow 0.2")
        # WeChat's retry: the same message (MsgId) with a fresh nonce, while the first runs
        first = asyncio.ensure_future(sim.send_fields(fields))
        await asyncio.sleep(0.05)
        retry = await sim.send_fields(fields)
        answered = await first
        assert (answered.status, answered.content) == (200, "done after 0.2s")
        assert (retry.status, retry.content) == (200, "done after 0.2s")
        # and a retry after the answer gets it again, without running the handler
        again = await sim.send_fields(fields)
        assert (again.status, again.content) == (200, "done after 0.2s")
        async with bot.session.get(f"{bot.base}/metrics") as resp:
            metrics = await resp.text()
        assert 'wechat_bot_requests_total{msg_type="text",outcome="duplicate"} 2.0' in metrics
        assert await bot.stop() == 0
        log = bot.log()
    assert "Traceback" not in log and "ERROR" not in log, log
