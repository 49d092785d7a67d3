"""The processes a bench run starts: the fake WeChat API, the bare server and the bot.

Each runs as its own process, optionally pinned to CPUs, with its output in a log file; the
runner waits for its readiness URL and stops it with SIGINT (aiohttp's graceful shutdown).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Settings the environment could override in the bot's config (the environment wins there).
_SCRUBBED_PREFIXES = ("WECHAT_", "BOT_")
_SCRUBBED = frozenset({"REDIS_URL", "LOG_FORMAT", "LOG_LEVEL", "PORT", "HOST"})
_READY_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0


class ServerError(RuntimeError):
    """A server process did not start or answer."""


def apt_install(package: str, executable: str, fallback: str) -> str:
    """The path of `executable`, after installing the Debian `package` with apt-get when it is
    missing and this runs as root; ServerError saying `fallback` (what to do instead) if not."""
    found = shutil.which(executable)
    if found:
        return found
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        raise ServerError(
            f"{executable} is not installed: install the Debian package `{package}` "
            f"(apt-get install {package}) {fallback}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"bench: {executable} missing; installing the Debian package `{package}`", flush=True)
    for step in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", package]):
        done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise ServerError(f"{' '.join(step[1:])} failed: {done.stderr.strip()[-500:]}")
    found = shutil.which(executable)
    if not found:
        raise ServerError(f"apt-get installed {package} but {executable} is not on PATH")
    return found


def free_port() -> int:
    """A free loopback port (the tiny race with another process is acceptable for a bench)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the bot's settings, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    env.update(extra or {})
    return env


def pinned(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    """A preexec function that pins the child to `cpus` (None: no pinning)."""
    if not cpus:
        return None
    chosen = set(cpus)

    def pin() -> None:
        os.sched_setaffinity(0, chosen)

    return pin


@dataclass
class Server:
    """A running server process."""

    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def peak_rss_kib(self) -> int | None:
        """VmHWM (peak resident set) from /proc, in KiB; None when unavailable."""
        return read_status_kib(self.pid, "VmHWM")

    def stop(self) -> int | None:
        """SIGINT, then SIGKILL after a while; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def read_status_kib(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def start_server(
    name: str,
    args: Sequence[str],
    *,
    port: int,
    ready_path: str,
    log_path: Path,
    cpus: frozenset[int] | None = None,
    env: Mapping[str, str] | None = None,
) -> Server:
    """Start `python <args>` and wait until GET `ready_path` answers 200."""
    log = open(log_path, "wb")  # noqa: SIM115 -- the child owns it for its lifetime
    try:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=child_env(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=pinned(cpus),
        )
    finally:
        log.close()
    server = Server(name, process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_ready(server, ready_path)
    except BaseException:
        server.stop()
        raise
    return server


def wait_ready(server: Server, path: str, timeout: float = _READY_TIMEOUT) -> None:
    """Poll `path` until 200; ServerError when the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log_path.read_text(errors="replace")[-2000:]
            raise ServerError(f"{server.name} exited ({server.process.returncode}):\n{tail}")
        try:
            with urllib.request.urlopen(server.base_url + path, timeout=1.0) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise ServerError(f"{server.name} did not answer {path} within {timeout:.0f} s")


def get_text(url: str, timeout: float = 5.0) -> str:
    """GET `url` (loopback) and return the body."""
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        body: bytes = answer.read()
        return body.decode()
