"""Where the bot's time goes per request: py-spy samples of `python -m bot serve` under wrk.

py-spy is a developer tool, not a dependency: `.venv/bin/pip install py-spy`. It attaches to
the running bot (no code change), samples its stacks while wrk drives it with distinct signed
pushes after a warm-up (cached profiles), and each sample is put in one pipeline stage:

* anything under `logging` or `bot/logs.py` is logging, under `prometheus_client` or
  `bot/metrics.py` is metrics, wherever it is called from;
* otherwise the innermost frame in `bot/` or `handlers/` names the stage (`bot/wechat/xml.py` is
  parse, `bot/webhook/ledger.py` the ledger, the handler and its context is greet, ...);
* samples with no project frame are aiohttp's server or the event loop.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.corpus import CorpusSpec, Identity, Mode, write_corpus
from bench.load import LoadError, ensure_wrk, run_wrk
from bench.redis_server import ensure_redis_server, start_redis
from bench.run import (
    BOT,
    BOT_REDIS,
    BenchOptions,
    metric_outcomes,
    split_cpus,
    start_bot,
    start_fake,
)
from bench.servers import Server, free_port, get_text, pinned, start_server

_FRAME_RE = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_WARMUP_SECONDS = 5.0

# Innermost project module -> stage. Order does not matter: module paths are distinct.
_STAGES: tuple[tuple[str, str], ...] = (
    ("bot/wechat/signature.py", "signature (sha1 + compare)"),
    ("bot/webhook/replay.py", "replay guard (window + nonce)"),
    ("bot/storage/memory.py", "replay guard (window + nonce)"),
    ("bot/wechat/xml.py", "parse (XML body)"),
    ("bot/wechat/messages.py", "parse (Message)"),
    ("bot/wechat/crypto.py", "crypto"),
    ("bot/webhook/ledger.py", "dedup ledger (task + wait)"),
    ("bot/routing/dispatch.py", "route (dispatcher)"),
    ("bot/routing/router.py", "route (dispatcher)"),
    ("handlers/", "greet (handler + context)"),
    ("bot/routing/context.py", "greet (handler + context)"),
    ("bot/followers/language.py", "greet (handler + context)"),
    ("bot/client/profiles.py", "greet (handler + context)"),
    ("bot/followers/store.py", "greet (handler + context)"),
    ("bot/storage/", "greet (handler + context)"),
    ("bot/wechat/replies.py", "render (reply XML)"),
    (
        "bot/webhook/app.py",
        "render (reply XML)",
    ),  # the ledger's render callback lives in create_app
    ("bot/webhook/pipeline.py", "webhook glue"),
    ("bot/server/batch.py", "webhook glue"),
    ("bot/server/fastpath.py", "HTTP (fast path: framing, query, writes)"),
)


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame as py-spy prints it."""

    func: str
    file: str

    @property
    def where(self) -> str:
        """`file:func` for tables."""
        return f"{self.file}:{self.func}"


@dataclass
class ProfileReport:
    """The profile of one run."""

    mode: Mode
    seconds: float
    requests: int = 0
    cpu_seconds: float = 0.0
    samples: int = 0  # main thread only
    other_thread_samples: int = 0
    stages: Counter[str] = field(default_factory=Counter)
    leaves: Counter[str] = field(default_factory=Counter)  # self time by function
    inclusive: Counter[str] = field(default_factory=Counter)  # project functions, inclusive
    rps: float = 0.0  # without the sampler
    profiled_rps: float = 0.0
    bare_us_per_request: float = 0.0  # the bare aiohttp server's CPU per request, same load
    bare_rps: float = 0.0
    raw_path: Path | None = None

    @property
    def us_per_request(self) -> float:
        """The bot's CPU time per request, in microseconds."""
        return self.cpu_seconds / self.requests * 1e6 if self.requests else 0.0


def find_py_spy() -> str:
    """py-spy beside this interpreter or on PATH; LoadError with the install hint otherwise."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise LoadError(
            "py-spy is not installed: `.venv/bin/pip install py-spy` (a developer tool; "
            "it is not a project dependency)"
        )
    return found


def parse_frame(text: str) -> Frame:
    """`func (file:line)` -> Frame."""
    match = _FRAME_RE.match(text.strip())
    if match is None:
        return Frame(text.strip(), "?")
    return Frame(match["func"], match["file"].replace("\\", "/"))


def stage_of(stack: list[Frame]) -> str:
    """The pipeline stage of one sample (stack from the root to the leaf)."""
    files = [f.file for f in stack]
    if any(_is(f, "logging/", "bot/logs.py") for f in files):
        return "logging"
    if any(_is(f, "prometheus_client/", "bot/metrics.py") for f in files):
        return "metrics"
    for frame in reversed(stack):
        for module, stage in _STAGES:
            if _is(frame.file, module):
                if stage == "crypto":
                    return "encrypt reply" if "encrypt" in frame.func else "decrypt"
                if stage == "webhook glue" and _is(stack[-1].file, "aiohttp/", "multidict/"):
                    return "aiohttp request/response API (called by the webhook)"
                return stage
    leaf = stack[-1]
    if leaf.func == "run_app" and _is(leaf.file, "aiohttp/web.py"):
        # uvloop runs the loop, sockets and task steps in C below web.run_app's frame
        return "event loop (uvloop C code: sockets, callbacks)"
    if any(_is(f, "aiohttp/") for f in files):
        return "aiohttp server (protocol, routing, writing)"
    if any(_is(f, "asyncio/", "uvloop/") for f in files):
        return "event loop and tasks"
    return "other"


def _is(file: str, *needles: str) -> bool:
    # py-spy prints paths relative to sys.path entries, or absolute ones: match on the suffix
    return any(("/" + file).find("/" + n) >= 0 for n in needles)


def read_samples(path: Path) -> Iterable[tuple[list[Frame], int]]:
    """(stack root->leaf, count) from a py-spy `--format raw` file."""
    with open(path, encoding="utf-8", errors="replace") as src:
        for line in src:
            stack_text, _, count = line.rstrip("\n").rpartition(" ")
            if not stack_text or not count.isdigit():
                continue
            yield [parse_frame(f) for f in stack_text.split(";")], int(count)


def analyse(report: ProfileReport, path: Path) -> None:
    """Fill the report's counters from a py-spy raw file."""
    for stack, count in read_samples(path):
        if stack and stack[0].func == "Thread._bootstrap":
            # the SQLite worker thread, parked on its queue: blocking py-spy cannot tell idle
            report.other_thread_samples += count
            continue
        report.samples += count
        report.stages[stage_of(stack)] += count
        report.leaves[stack[-1].where] += count
        seen = set()
        for frame in stack:
            if _is(frame.file, "bot/", "handlers/") and frame.where not in seen:
                seen.add(frame.where)
                report.inclusive[frame.where] += count


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_profile(
    *,
    mode: Mode = "plain",
    seconds: float = 20.0,
    rate: int = 100,
    keep: bool = False,
    redis: bool = False,
    say: Callable[[str], None] = print,
) -> ProfileReport:
    """Start the fake and the bot (with a redis-server of its own when `redis`), warm up, then
    sample the bot while wrk drives it."""
    wrk = ensure_wrk()
    redis_server = ensure_redis_server() if redis else None
    bench_redis = None
    py_spy = find_py_spy()
    opts = BenchOptions()
    server_cpus, load_cpus = split_cpus(True)
    workdir = Path(tempfile.mkdtemp(prefix="wechat-bench-profile-"))
    identity = Identity.fresh()
    servers: list[Server] = []
    report = ProfileReport(mode, seconds)
    try:
        name = BOT_REDIS if redis_server else BOT
        fake = start_fake(identity, opts, workdir, load_cpus, name)
        if redis_server:
            bench_redis = start_redis(redis_server, workdir / "redis.log", load_cpus)
        servers.append(fake)
        count = opts.requests
        corpus = write_corpus(
            CorpusSpec.new(identity, mode, count, opts.followers), workdir / f"corpus-{mode}.txt"
        )
        say(f"profile: {count:,} {mode} pushes generated in {corpus.seconds:.1f} s")
        redis_url = bench_redis.url if bench_redis else None
        bot = start_bot(identity, opts, workdir, fake, 300.0, server_cpus, name, redis_url)
        servers.append(bot)
        url = bot.base_url + identity.webhook_path
        warm = run_wrk(
            wrk,
            url,
            corpus.path,
            0,
            seconds=_WARMUP_SECONDS,
            connections=opts.connections,
            threads=opts.threads,
            cpus=load_cpus,
        )
        # CPU per request without the sampler: py-spy pauses the bot at every sample
        before = sum(metric_outcomes(get_text(bot.base_url + "/metrics")).values())
        cpu_before = _cpu_seconds(bot.pid)
        plain_run = run_wrk(
            wrk,
            url,
            corpus.path,
            warm.lines_used,
            seconds=seconds,
            connections=opts.connections,
            threads=opts.threads,
            cpus=load_cpus,
        )
        report.cpu_seconds = _cpu_seconds(bot.pid) - cpu_before
        report.requests = (
            sum(metric_outcomes(get_text(bot.base_url + "/metrics")).values()) - before
        )
        report.rps = plain_run.rps
        raw = workdir / "py-spy.raw.txt"
        sampler = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(bot.pid),
                "--rate",
                str(rate),
                "--duration",
                str(round(seconds) + 1),
                "--format",
                "raw",  # blocking (the default): --nonblocking tears async stacks apart
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=pinned(load_cpus),
        )
        time.sleep(0.5)  # py-spy attaches before the load starts
        profiled = run_wrk(
            wrk,
            url,
            corpus.path,
            warm.lines_used + plain_run.lines_used,
            seconds=seconds,
            connections=opts.connections,
            threads=opts.threads,
            cpus=load_cpus,
        )
        _, err = sampler.communicate(timeout=seconds + 60)
        if sampler.returncode != 0 or not raw.exists():
            raise LoadError(f"py-spy failed: {err.decode(errors='replace')[-1000:]}")
        report.profiled_rps = profiled.rps
        analyse(report, raw)
        if keep:
            report.raw_path = raw
        bot.stop()
        port = free_port()
        bare = start_server(
            "bare",
            ["-m", "bench.bare", "--port", str(port)],
            port=port,
            ready_path="/healthz",
            log_path=workdir / "bare.log",
            cpus=server_cpus,
        )
        servers.append(bare)
        cpu_before = _cpu_seconds(bare.pid)
        bare_load = run_wrk(
            wrk,
            bare.base_url + identity.webhook_path,
            corpus.path,
            0,
            seconds=seconds,
            connections=opts.connections,
            threads=opts.threads,
            cpus=load_cpus,
        )
        report.bare_rps = bare_load.rps
        if bare_load.requests:
            report.bare_us_per_request = (
                (_cpu_seconds(bare.pid) - cpu_before) / bare_load.requests * 1e6
            )
    finally:
        for server in reversed(servers):
            server.stop()
        if bench_redis is not None:
            bench_redis.stop()
        if keep:
            say(f"profile: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


def render_profile(report: ProfileReport, top: int = 25) -> str:
    """Stages with their share and µs per request, then the hottest functions."""
    per_sample = report.us_per_request / report.samples if report.samples else 0.0
    lines = [
        f"profile ({report.mode}): bot CPU {report.us_per_request:.0f} µs per request "
        f"({report.requests:,} requests in {report.seconds:g} s, {report.rps:,.0f} req/s, "
        "no sampler)",
        f"py-spy: {report.samples:,} main-thread samples in a second run at "
        f"{report.profiled_rps:,.0f} req/s ({report.other_thread_samples:,} samples of the idle "
        "SQLite thread left out); µs/req = share × CPU per request without the sampler",
        f"bare aiohttp server, same load: CPU {report.bare_us_per_request:.0f} µs per request "
        f"({report.bare_rps:,.0f} req/s)",
        "",
        f"{'stage':56} {'share':>6} {'µs/req':>7}",
    ]
    for stage, count in report.stages.most_common():
        lines.append(
            f"{stage:56} {count / report.samples:6.1%} {count * per_sample:7.1f}"
            if report.samples
            else stage
        )
    lines += ["", f"hottest functions (self time), top {top}:"]
    for where, count in report.leaves.most_common(top):
        lines.append(f"  {count / max(report.samples, 1):6.1%}  {where}")
    lines += ["", f"project functions (inclusive), top {top}:"]
    for where, count in report.inclusive.most_common(top):
        lines.append(f"  {count / max(report.samples, 1):6.1%}  {where}")
    if report.raw_path:
        lines.append(f"raw samples: {report.raw_path}")
    return "\n".join(lines)
