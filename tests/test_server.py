"""`wechat-bot serve` as a process: pushes on the fast path or through aiohttp, the rest on aiohttp,
and a clean exit on SIGTERM either way."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from support import free_port, serve_command, serve_env, wait_until_healthy
from test_layout import SPEED_LAYER

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


# Run in a fresh interpreter where the speed layer cannot be imported, as if its files were gone.
WITHOUT_SPEED_LAYER = """
import asyncio, importlib, sys, tempfile
from pathlib import Path
for name in SPEED_LAYER:
    sys.modules[name] = None  # import raises ImportError, as for a deleted file

import aiohttp
from listening_bots import listening_bot, read_until_closed
from bot.server.connections import Limits
from bot.testing.fake_wechat import FakeFollower, FakeWeChat, start_fake_wechat
from bot.testing.pytest_plugin import TEST_APP_ID, TEST_SECRET, TEST_TOKEN
from bot.testing.simulator import WeChatSimulator

async def main() -> None:
    assert importlib.import_module("bot.server.serve").FastServer is None
    fake = FakeWeChat(app_id=TEST_APP_ID, app_secret=TEST_SECRET)
    fake.add_follower(FakeFollower("o_test_wang", remark="小王"))
    runner, api = await start_fake_wechat(fake=fake)
    limits = Limits(read_timeout=0.3, keepalive_timeout=60.0)
    with tempfile.TemporaryDirectory() as tmp:
        async with listening_bot(fake, api, Path(tmp), fast_path=True, limits=limits) as served:
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{served.port}/wechat"
                reply = await WeChatSimulator(session, url, token=TEST_TOKEN).send_text(
                    "o_test_wang", "你好"
                )
            print(reply.status, reply.content)
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(b"\\nGET /healthz HTTP/1.1\\r\\nX-A: a")
            print("cut off:", await read_until_closed(reader) == b"")
            writer.close()
    await runner.cleanup()

asyncio.run(main())
"""


def test_without_the_speed_layer_aiohttp_serves_pushes_within_the_limits() -> None:
    root = Path(__file__).resolve().parents[1]
    script = f"SPEED_LAYER = {sorted(SPEED_LAYER)!r}\n" + WITHOUT_SPEED_LAYER
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "tests"), str(root)])}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["200 你好，小王！欢迎关注Test Account。", "cut off: True"]
