"""The memory check: 100,000 distinct followers through the bot's caches, in this process.

The bot app runs here (aiohttp test server, shipped bounds), the fake WeChat API in its own
process knows every follower, and each follower sends one signed text message over HTTP. Every
follower is new, so every table sees a new key per request: the profile cache, the reply
ledger (dedup), the nonce cache and the followers' records cache must all stay at their bounds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from bench.corpus import CorpusSpec, Identity, LineMaker
from bench.run import ACCOUNT_NAME, Check
from bench.servers import free_port, get_text, read_status_kib, start_server
from bot.config import Config, load_config
from bot.webhook.app import create_app
from bot.webhook.services import SERVICES, Services

_WARMUP = 200  # requests before the "before" reading: lazy imports and first allocations


@dataclass(frozen=True, slots=True)
class Table:
    """One bounded table: its size after the run and its configured bound."""

    name: str
    size: int | None  # None: the attribute could not be read (the bot's internals changed)
    bound: int
    setting: str


@dataclass
class MemoryReport:
    """What the memory check found."""

    followers: int
    seconds: float = 0.0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    peak_kib: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    upstream: dict[str, int] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return bool(self.checks) and all(c.ok for c in self.checks)


def run_memory(
    followers: int = 100_000, concurrency: int = 64, say: Callable[[str], None] = print
) -> MemoryReport:
    """Run the check (about a minute for 100,000 followers on one core)."""
    workdir = Path(tempfile.mkdtemp(prefix="wechat-bench-memory-"))
    identity = Identity.fresh()
    port = free_port()
    fake = start_server(
        "fake",
        ["-m", "bench.fake", "--port", str(port), "--followers", str(followers)],
        port=port,
        ready_path="/_fake/counters",
        log_path=workdir / "fake.log",
    )
    try:
        config = _config(identity, fake.base_url, workdir)
        report = _run_loop(config, identity, followers, concurrency, say)
        report.upstream = {
            k: int(v) for k, v in json.loads(get_text(fake.base_url + "/_fake/counters")).items()
        }
        report.checks.extend(_upstream_checks(report))
        return report
    finally:
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _run_loop(
    config: Config, identity: Identity, followers: int, concurrency: int, say: Callable[[str], None]
) -> MemoryReport:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_push(config, identity, followers, concurrency, say))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_push(config, identity, followers, concurrency, say))


def _config(identity: Identity, api_base_url: str, workdir: Path) -> Config:
    """The shipped bounds (config.yaml's defaults); the environment is ignored."""
    settings = {
        "token": identity.token,
        "app_id": identity.app_id,
        "app_secret": identity.app_secret,
        "api_base_url": api_base_url,
        "account_name": ACCOUNT_NAME,
        "handlers": ["handlers.greeting"],
        "data_dir": str(workdir / "data"),
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return load_config(path, {})


async def _push(
    config: Config,
    identity: Identity,
    followers: int,
    concurrency: int,
    say: Callable[[str], None],
) -> MemoryReport:
    report = MemoryReport(followers)
    # one push per follower: index i comes from follower i
    make = LineMaker(CorpusSpec.new(identity, "plain", followers + _WARMUP, followers)).line
    client = TestClient(TestServer(create_app(config)))
    await client.start_server()
    try:
        bot = client.app[SERVICES]
        base = str(client.make_url("")).rstrip("/")
        statuses: dict[int, int] = {}
        # the warm-up reuses followers 0.. with their own nonces and MsgIds (numbers past N)
        await _send_all(
            client, base, make, range(followers, followers + _WARMUP), concurrency, statuses
        )
        gc.collect()
        report.rss_before_kib = _rss()
        say(f"memory: RSS before {report.rss_before_kib / 1024:.1f} MiB; {followers:,} followers")
        started = time.perf_counter()
        step = max(1, followers // 10)
        for start in range(0, followers, step):
            chunk = range(start, min(start + step, followers))
            await _send_all(client, base, make, chunk, concurrency, statuses)
            say(
                f"memory: {chunk.stop:,} followers, RSS {_rss() / 1024:.1f} MiB, "
                f"{chunk.stop / (time.perf_counter() - started):,.0f} req/s"
            )
        report.seconds = time.perf_counter() - started
        await asyncio.sleep(0)  # let background profile fetches settle their callbacks
        gc.collect()
        report.rss_after_kib = _rss()
        report.peak_kib = read_status_kib_self("VmHWM")
        report.statuses = statuses
        report.tables = _tables(bot, config)
    finally:
        await client.close()
    report.checks.extend(_table_checks(report))
    return report


async def _send_all(
    client: TestClient,  # type: ignore[type-arg]
    base: str,
    make: Callable[[int], bytes],
    indexes: range,
    concurrency: int,
    statuses: dict[int, int],
) -> None:
    todo = iter(indexes)

    async def worker() -> None:
        for index in todo:  # one shared iterator: each index is sent once
            target, _, body = make(index).rstrip(b"\n").partition(b"\t")
            async with client.session.post(
                URL(base + target.decode("ascii"), encoded=True),
                data=body,
                headers={"Content-Type": "text/xml"},
            ) as answer:
                await answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _rss() -> int:
    return read_status_kib_self("VmRSS")


def read_status_kib_self(field_name: str) -> int:
    """A /proc/self/status kB field (0 when unavailable)."""
    return read_status_kib(os.getpid(), field_name) or 0


def _size(obj: object, *path: str) -> int | None:
    """len() of an attribute chain; None when the bot's internals no longer have it."""
    for name in path:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return len(obj) if isinstance(obj, Sized) else None


def _tables(bot: Services, config: Config) -> list[Table]:
    return [
        Table(
            "profile cache", _size(bot, "profiles"), config.profile_cache_size, "profile_cache_size"
        ),
        Table("reply ledger (dedup)", _size(bot, "ledger"), config.dedup_size, "dedup_size"),
        # private attributes: the bot has no public size for these (see the bench report)
        Table(
            "nonce cache",
            _size(bot, "replay", "_storage"),
            config.nonce_cache_size,
            "nonce_cache_size",
        ),
        Table(
            "follower records cache",
            _size(bot, "storage", "_records", "_cache"),
            config.storage_max_entries,
            "storage_max_entries",
        ),
        Table(
            "ephemeral store",
            _size(bot, "storage"),
            config.storage_max_entries,
            "storage_max_entries",
        ),
        Table("profile fetches in flight", _size(bot, "profiles", "_loading"), 0, "-"),
        Table("handlers running", len(bot.ledger.running), 0, "-"),
    ]


def _table_checks(report: MemoryReport) -> list[Check]:
    checks = []
    for table in report.tables:
        ok = table.size is not None and table.size <= table.bound
        checks.append(Check(f"{table.name} within bound", ok, f"{table.size} ≤ {table.bound:,}"))
    good = report.statuses.get(200, 0)
    total = sum(report.statuses.values())
    checks.append(Check("every push answered 200", good == total, f"{good:,} of {total:,}"))
    return checks


def _upstream_checks(report: MemoryReport) -> list[Check]:
    tokens = report.upstream.get("stable_token", 0) + report.upstream.get("token", 0)
    user_info = report.upstream.get("user_info", 0)
    return [
        Check("exactly 1 token fetch", tokens == 1, str(tokens)),
        Check(
            "at most 1 user/info per follower",
            user_info <= report.followers,
            f"{user_info:,} for {report.followers:,}",
        ),
    ]


def render_memory(report: MemoryReport) -> str:
    """The memory check as text."""
    growth = report.rss_after_kib - report.rss_before_kib
    lines = [
        f"memory: {report.followers:,} distinct followers in {report.seconds:.1f} s "
        f"({report.followers / max(report.seconds, 1e-9):,.0f} req/s, in process, bot + client)",
        f"RSS before {report.rss_before_kib / 1024:.1f} MiB, "
        f"after {report.rss_after_kib / 1024:.1f} MiB (+{growth / 1024:.1f} MiB, "
        f"{growth * 1024 / max(report.followers, 1):,.0f} B per follower), "
        f"peak {report.peak_kib / 1024:.1f} MiB",
    ]
    width = max(len(t.name) for t in report.tables) if report.tables else 0
    for t in report.tables:
        size = "?" if t.size is None else f"{t.size:,}"
        lines.append(f"  {t.name.ljust(width)}  {size:>8} / {t.bound:,} ({t.setting})")
    up = report.upstream
    lines.append(
        "upstream: " + ", ".join(f"{k} {v:,}" for k, v in sorted(up.items()))
        if up
        else "upstream: ?"
    )
    for check in report.checks:
        lines.append(f"check {'✓' if check.ok else '✗'} {check.name}: {check.detail}")
    lines.append("result: " + ("all checks passed" if report.ok else "CHECKS FAILED"))
    return "\n".join(lines)
