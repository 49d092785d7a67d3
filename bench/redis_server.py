"""The bench's own `redis-server`: on a free port, nothing on disk, its command counts read back.

The bench never uses a Redis it did not start, so `INFO commandstats` counts the bot's commands
and nothing else's.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.servers import ServerError, apt_install, free_port, pinned

_READY_TIMEOUT = 10.0


def ensure_redis_server() -> str:
    """redis-server, installed with apt-get when missing and running as root."""
    return apt_install("redis-server", "redis-server", "or run with --no-redis")


@dataclass
class BenchRedis:
    """A running throwaway redis-server."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        """Its URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command_calls(self) -> dict[str, int]:
        """Calls per command since start (`INFO commandstats`), the bench's own INFO excluded;
        commands run inside scripts are counted too."""
        client = redis.Redis.from_url(self.url, socket_timeout=5.0)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        calls = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if isinstance(value, dict)
        }
        calls.pop("info", None)
        return calls

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a while."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_redis(executable: str, log_path: Path, cpus: frozenset[int] | None) -> BenchRedis:
    """A redis-server on a free loopback port, answering PING."""
    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [executable, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=pinned(cpus),
        )
    server = BenchRedis(process, port)
    deadline = time.monotonic() + _READY_TIMEOUT
    while True:
        client = redis.Redis.from_url(server.url, socket_timeout=0.2, socket_connect_timeout=0.2)
        try:
            if client.ping():
                return server
        except (redis.RedisError, OSError):
            pass
        finally:
            client.close()
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise ServerError(f"redis-server did not start on port {port}")
        time.sleep(0.05)
