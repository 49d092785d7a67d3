"""Redis for tests: a reachable server (or a throwaway one) and a namespace per test.

The server is REDIS_URL, else redis://127.0.0.1:6379/15. When it does not answer: in CI
(CI=true) the test fails; elsewhere a throwaway `redis-server` is started on a free port
for the session if one is installed, and the test is skipped if not.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio
from support import free_port

from bot.storage import RedisStorage, masked_url

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def in_ci() -> bool:
    """True on CI, where a missing Redis is a failure rather than a skip."""
    return os.environ.get("CI") == "true"


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    """True when a PING to `url` succeeds within `timeout` seconds."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


class RedisServer:
    """A throwaway `redis-server` on 127.0.0.1:`port`: no persistence, killable, restartable."""

    def __init__(self, executable: str, port: int) -> None:
        """Prepare (not start) a server; `executable` is the path of redis-server."""
        self.executable = executable
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, ready_within: float = 10.0) -> None:
        """Start the server and wait (bounded) until it answers a PING."""
        self._process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + ready_within
        while not redis_answers(self.url, timeout=0.2):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its connections and answers nothing until `thaw`."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: a frozen server carries on."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), like a crash, and reap it."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None


def redis_server_executable() -> str | None:
    """The path of `redis-server`, when installed."""
    return shutil.which("redis-server")


def require_redis_server() -> str:
    """The path of `redis-server`; fail in CI, skip elsewhere, when it is missing."""
    executable = redis_server_executable()
    if executable is None:
        if in_ci():
            pytest.fail("redis-server is required in CI but is not on PATH")
        pytest.skip("redis-server is not installed")
    return executable


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a Redis that answers, for the whole session."""
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if redis_answers(url):
        yield url
        return
    if in_ci():
        pytest.fail(f"Redis required in CI, but {masked_url(url)} does not answer")
    executable = redis_server_executable()
    if executable is None:
        pytest.skip(f"no Redis at {masked_url(url)} and redis-server is not installed")
    server = RedisServer(executable, free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture
def redis_namespace() -> str:
    """A namespace no other test uses."""
    return f"wechat-bot-test:{uuid.uuid4().hex}"


async def delete_namespace(url: str, namespace: str) -> None:
    """Delete every key under `namespace`."""
    client = redis.asyncio.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_storage(redis_url: str, redis_namespace: str) -> AsyncIterator[RedisStorage]:
    """A RedisStorage in a fresh namespace, whose keys are deleted afterwards."""
    storage = await RedisStorage.connect(redis_url, redis_namespace, timeout=2.0)
    try:
        yield storage
    finally:
        await storage.close()
        await delete_namespace(redis_url, redis_namespace)
