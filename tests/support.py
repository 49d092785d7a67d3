"""Small helpers several test modules share: the known-answer vectors, ports, start-up waits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import TEST_TOKEN
from bot.testing.simulator import WeChatSimulator

# The repo and shared/ sit side by side, here and in CI.
VECTORS_PATH = Path(__file__).resolve().parents[2] / "shared" / "wechat-vectors.json"


def load_vectors() -> dict[str, Any]:
    """The vectors, or {} when the file is missing (each module's presence test then fails)."""
    if not VECTORS_PATH.is_file():
        return {}
    data: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    return data


def odd_timestamps(now: int) -> list[str]:
    """Timestamps a signed push may carry that are not WeChat's plain ASCII digits, most of
    them `now` in a form `int()` accepts, one too large for a float: each must be refused."""
    return [
        "9" * 400,
        f"-{now}",
        f"+{now}",
        f" {now}",
        f"{now} ",
        f"{now}\n",
        f"{now:_}",
        "".join(chr(0x0660 + int(digit)) for digit in str(now)),  # Arabic-Indic digits
        "1e9",
        f"{now}.0",
    ]


def serve_env(fake: FakeWeChat, api_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for `serve_command`: this process's, plus the settings for `fake`."""
    return {
        **os.environ,
        "WECHAT_TOKEN": TEST_TOKEN,
        "WECHAT_APP_ID": fake.app_id,
        "WECHAT_APP_SECRET": fake.app_secret,
        "WECHAT_API_BASE_URL": api_url.rstrip("/"),
        "BOT_DATA_DIR": str(data_dir),
        **extra,
    }


def serve_command(port: int) -> list[str]:
    """`python -m bot serve` on 127.0.0.1:`port`, for tests that run the bot as a process."""
    return [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)]


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_until_healthy(
    session: aiohttp.ClientSession,
    url: str,
    *,
    timeout: float = 20.0,
    exited: Callable[[], bool] = lambda: False,
) -> bool:
    """Poll `url` until it answers 200; False when `exited()` or the timeout comes first."""
    deadline = time.monotonic() + timeout
    while not exited():
        try:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return True
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return False


@dataclass
class ServedBot:
    """`wechat-bot serve` running as a process against a fake WeChat API, and a session to it."""

    process: asyncio.subprocess.Process
    base: str
    session: aiohttp.ClientSession
    log_path: Path

    def simulator(self) -> WeChatSimulator:
        """A simulator signing plaintext pushes to the bot's webhook."""
        return WeChatSimulator(self.session, f"{self.base}/wechat", token=TEST_TOKEN)

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send `sig` and wait for the exit; the exit code."""
        self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), timeout)

    def log(self) -> str:
        """What the bot wrote to stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@asynccontextmanager
async def served_bot(fake: FakeWeChat, data_dir: Path, **env: str) -> AsyncIterator[ServedBot]:
    """Serve the bot as a process on a free port until the block ends (then kill it if alive).

    Its stderr goes to a file, so a chatty bot never blocks on a full pipe.
    """
    api = TestServer(fake.app)
    await api.start_server()
    port = free_port()
    log_path = data_dir / "bot-stderr.log"
    try:
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *serve_command(port),
                env=serve_env(fake, str(api.make_url("")), data_dir, **env),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as session:
                up = await wait_until_healthy(
                    session, f"{base}/healthz", exited=lambda: process.returncode is not None
                )
                assert up, f"the bot did not start:\n{log_path.read_text(errors='replace')}"
                yield ServedBot(process, base, session, log_path)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    finally:
        await api.close()


async def run_cli(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 60.0
) -> tuple[int, str, str]:
    """`python -m bot ARGS` as a user runs it, without blocking the loop serving the fakes;
    (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8"), err.decode("utf-8")


def operator_env(api_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of an operator command against the fake at `api_url` (this process's,
    without the settings a developer's shell may carry)."""
    inherited = ("WECHAT_", "BOT_", "REDIS_URL", "LOG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env.pop("PORT", None)
    env.pop("HOST", None)
    return {
        **env,
        "PYTHONIOENCODING": "utf-8",
        "WECHAT_TOKEN": TEST_TOKEN,
        "WECHAT_APP_ID": "wx_fake_app",
        "WECHAT_APP_SECRET": "fake_secret",
        "WECHAT_API_BASE_URL": api_url,
        "WECHAT_MP_BASE_URL": api_url,
        "BOT_DATA_DIR": str(data_dir),
        **extra,
    }
