"""Load generators: `wrk` with `requests.lua`, or a small aiohttp client loop when wrk is missing.

Both read the same corpus file from a given line on and report the same `LoadResult`,
including how many lines they used, so the next run starts on lines nobody sent yet.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from bench.corpus import read_corpus
from bench.servers import apt_install, pinned

LUA_SCRIPT = Path(__file__).with_name("requests.lua")
# More than any server answers here (bare aiohttp: ~35k req/s): each wrk thread loads at most
# seconds * MAX_RATE / threads lines, and a faster run would send lines again (and say so).
MAX_RATE = 80_000
REQUEST_TIMEOUT = 5.0  # WeChat's own patience; a slower answer counts as an error
_RESULT_PREFIX = "BENCH_RESULT "


class LoadError(RuntimeError):
    """The load generator failed or is missing."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One load run against one server."""

    driver: str
    requests: int  # completed
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]  # connect, read, write, status (>399), timeout
    lines_used: int  # corpus lines this run may have consumed (the next run starts after)
    recycled: int  # requests sent again because the run outlasted its lines

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        """All errors together."""
        return sum(self.errors.values())


def find_wrk() -> str | None:
    """The wrk executable, or None."""
    return shutil.which("wrk")


def ensure_wrk() -> str:
    """wrk, installed with apt-get when missing and running as root; ServerError otherwise."""
    return apt_install(
        "wrk",
        "wrk",
        "or run with --driver aiohttp (its numbers measure the client, not the server)",
    )


def wrk_version(wrk: str) -> str:
    """wrk's version line."""
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
    return (
        (done.stdout or done.stderr).splitlines()[0].strip()
        if (done.stdout or done.stderr)
        else "?"
    )


def run_wrk(
    wrk: str,
    url: str,
    corpus: Path,
    first: int,
    *,
    seconds: float,
    connections: int,
    threads: int,
    cpus: frozenset[int] | None = None,
) -> LoadResult:
    """One wrk run of `seconds` from corpus line `first`."""
    threads = max(1, min(threads, connections))
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={REQUEST_TIMEOUT:g}s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(corpus),
        str(first),
        str(threads),
        str(math.ceil(seconds * MAX_RATE / threads)),
    ]
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=seconds + 300,  # loading a large corpus into Lua takes a few seconds
        preexec_fn=pinned(cpus),
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith(_RESULT_PREFIX)), None)
    if done.returncode != 0 or line is None:
        raise LoadError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout)[-1500:]}")
    data = json.loads(line[len(_RESULT_PREFIX) :])
    errors = {k[len("errors_") :]: int(v) for k, v in data.items() if k.startswith("errors_")}
    return LoadResult(
        driver="wrk",
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1e3,
        p90_ms=data["p90_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
        max_ms=data["max_us"] / 1e3,
        errors=errors,
        # threads take every T-th line: the slowest-moving cursor is the furthest one times T
        lines_used=int(data["max_sent_per_thread"]) * int(data["threads"]),
        recycled=int(data["recycled"]),
    )


def run_client_loop(
    url: str, corpus: Path, first: int, *, seconds: float, connections: int
) -> LoadResult:
    """The fallback generator: `connections` aiohttp client tasks in this process."""
    return asyncio.run(_client_loop(url, corpus, first, seconds, connections))


async def _client_loop(
    url: str, corpus: Path, first: int, seconds: float, connections: int
) -> LoadResult:
    origin = str(URL(url).origin())  # the corpus lines carry the path, as with wrk
    lines = read_corpus(corpus, first)
    used = recycled = 0
    wrapped = False
    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}

    def next_request() -> tuple[str, bytes]:
        nonlocal lines, used, recycled, wrapped
        try:
            item = next(lines)
        except StopIteration:
            lines = read_corpus(corpus, first)  # out of lines: start over, and count it
            item = next(lines)
            wrapped = True
        used += 1
        recycled += wrapped
        return item

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.perf_counter()
        ends = started + seconds

        async def worker() -> None:
            while time.perf_counter() < ends:
                target, body = next_request()
                sent = time.perf_counter()
                try:
                    async with session.post(
                        URL(origin + target, encoded=True),
                        data=body,
                        headers={"Content-Type": "text/xml"},
                    ) as answer:
                        await answer.read()
                        if answer.status > 399:
                            errors["status"] += 1
                except TimeoutError:
                    errors["timeout"] += 1
                    continue
                except aiohttp.ClientConnectionError:
                    errors["read"] += 1
                    continue
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        driver="aiohttp",
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=_percentile(latencies, 50) * 1e3,
        p90_ms=_percentile(latencies, 90) * 1e3,
        p99_ms=_percentile(latencies, 99) * 1e3,
        max_ms=(latencies[-1] if latencies else 0.0) * 1e3,
        errors=errors,
        lines_used=used,
        recycled=recycled,
    )


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]
