"""The `python -m bench` command line: run (default), --smoke, memory, profile."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.load import LoadError
from bench.run import BenchOptions, elapsed_since, render, run_bench
from bench.servers import ROOT, ServerError

RESULTS = ROOT / "bench" / "results"


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run; exit 1 when a correctness check fails, 2 on setup."""
    args = _parser().parse_args(argv)
    try:
        code = args.run(args)
    except (LoadError, ServerError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="The pipeline against a bare aiohttp handler."
    )
    defaults = BenchOptions()
    parser.add_argument("--smoke", action="store_true", help="a few seconds; checks, no speed")
    parser.add_argument(
        "--duration", type=float, default=defaults.duration, help="seconds per measured round"
    )
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="measured rounds")
    parser.add_argument("--warmup", type=float, default=defaults.warmup, help="warm-up s")
    parser.add_argument("--connections", type=int, default=defaults.connections)
    parser.add_argument("--threads", type=int, default=defaults.threads, help="wrk threads")
    parser.add_argument(
        "--requests", type=int, default=defaults.requests, help="distinct pushes per mode"
    )
    parser.add_argument("--followers", type=int, default=defaults.followers)
    parser.add_argument(
        "--driver",
        choices=("auto", "wrk", "aiohttp"),
        default="auto",
        help="load generator (auto: wrk, installed when missing; --smoke: wrk if present)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    redis_rows = parser.add_mutually_exclusive_group()
    redis_rows.add_argument(
        "--redis",
        dest="redis",
        action="store_true",
        default=None,
        help="the bot+redis rows (the default; --smoke: when redis-server is installed)",
    )
    redis_rows.add_argument(
        "--no-redis", dest="redis", action="store_false", help="bare and embedded rows only"
    )
    parser.add_argument(
        "--bot-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="experiment: change a bot setting (e.g. log_level=WARNING); said in the output",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (corpus, logs)")
    parser.add_argument(
        "--json", type=Path, help="write the JSON report here (default: bench/results/)"
    )
    parser.set_defaults(run=_run)
    sub = parser.add_subparsers(dest="command")

    memory = sub.add_parser("memory", help="100,000 followers through the caches, in process")
    memory.add_argument("--followers", type=int, default=100_000)
    memory.add_argument("--concurrency", type=int, default=64)
    memory.set_defaults(run=_memory)

    profile = sub.add_parser("profile", help="where the bot's time goes (py-spy)")
    profile.add_argument("--mode", choices=("plain", "safe"), default="plain")
    profile.add_argument("--duration", type=float, default=20.0)
    profile.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    profile.add_argument("--keep", action="store_true")
    profile.add_argument("--redis", action="store_true", help="the bot with a Redis of its own")
    profile.add_argument(
        "--stages-only", action="store_true", help="only time each stage alone, in process"
    )
    profile.add_argument("--calls", type=int, default=5000, help="calls per stage")
    profile.set_defaults(run=_profile)
    return parser


def _run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.smoke:
        opts = BenchOptions.for_smoke(args.driver)
    else:
        opts = BenchOptions(
            duration=args.duration,
            rounds=max(1, args.rounds),
            warmup=args.warmup,
            connections=args.connections,
            threads=args.threads,
            requests=args.requests,
            followers=args.followers,
            driver=args.driver,
        )
    if opts.followers < 4:
        raise SystemExit("bench: --followers must be at least 4 (the probes use followers 0 and 3)")
    settings = tuple((k, v) for k, sep, v in (s.partition("=") for s in args.bot_setting) if sep)
    opts = dataclasses.replace(opts, pin=not args.no_pin, keep=args.keep, bot_settings=settings)
    if args.redis is not None:
        opts = dataclasses.replace(opts, redis=args.redis)
    report = run_bench(opts, say=lambda line: print(line, flush=True))
    print()
    print(render(report))
    data = report.to_json()
    path = args.json or RESULTS / ("smoke.json" if opts.smoke else "latest.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"bench: done in {elapsed_since(started)}")
    return 0 if report.ok else 1


def _memory(args: argparse.Namespace) -> int:
    from bench.memory import render_memory, run_memory

    report = run_memory(args.followers, args.concurrency, say=lambda s: print(s, flush=True))
    print(render_memory(report))
    return 0 if report.ok else 1


def _profile(args: argparse.Namespace) -> int:
    from bench.profile import render_profile, run_profile
    from bench.stages import render_stages, run_stages

    if not args.stages_only:
        report = run_profile(
            mode=args.mode,
            seconds=args.duration,
            rate=args.rate,
            keep=args.keep,
            redis=args.redis,
            say=lambda s: print(s, flush=True),
        )
        print(render_profile(report))
        print()
    print(render_stages(run_stages(args.calls)))
    return 0
