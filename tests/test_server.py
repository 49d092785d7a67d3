"""`wechat-bot serve` as a process: pushes on the fast path or through aiohttp, the rest on aiohttp,
and a clean exit on SIGTERM either way."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from support import free_port, serve_command, serve_env, wait_until_healthy

from bot.testing.fake_wechat import FakeFollower, FakeWeChat
from bot.testing.pytest_plugin import TEST_TOKEN
from bot.testing.simulator import WeChatSimulator
from bot.wechat.signature import sha1_signature


@pytest.mark.parametrize("fast_path", [True, False])
async def test_serve_answers_pushes_and_everything_else_then_exits_cleanly(
    tmp_path: Path, fast_path: bool
) -> None:
    fake = FakeWeChat()
    fake.add_follower(FakeFollower("o_test_wang", remark="小王"))
    server = TestServer(fake.app)
    await server.start_server()
    config = tmp_path / "config.yaml"
    config.write_text(f"fast_path: {str(fast_path).lower()}\n", encoding="utf-8")
    port = free_port()
    env = serve_env(fake, str(server.make_url("")), tmp_path, BOT_CONFIG=str(config))
    proc = await asyncio.create_subprocess_exec(
        *serve_command(port), env=env, stderr=asyncio.subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            assert await wait_until_healthy(session, f"{base}/healthz"), "the bot did not start"
            sim = WeChatSimulator(session, f"{base}/wechat", token=TEST_TOKEN)
            for _ in range(3):  # one keep-alive connection, several pushes
                reply = await sim.send_text("o_test_wang", "你好")
                assert reply.status == 200 and reply.content == "你好，小王！欢迎关注our account。"
            query = {"timestamp": "1", "nonce": "2", "echostr": "hello"}
            query["signature"] = sha1_signature(TEST_TOKEN, "1", "2")
            async with session.get(f"{base}/wechat", params=query) as resp:
                assert (resp.status, await resp.text()) == (200, "hello")
            async with session.get(f"{base}/metrics") as resp:
                text = await resp.text()
            assert 'wechat_bot_requests_total{msg_type="text",outcome="replied"} 3.0' in text
            async with session.post(f"{base}/wechat", data=b"<xml/>") as resp:
                assert resp.status == 403  # unsigned
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await server.close()
