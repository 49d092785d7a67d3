"""Each pipeline stage timed alone, in process, on the bench's own pushes (µs per call).

The sampling profile says where a loaded server spends its time; this says what each stage
costs by itself, so the two can be checked against each other. The bot is built with
`create_app` and started with an `AppRunner` (no listening socket) against the fake API in
process; every call gets a fresh nonce and MsgId, as under load.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import parse_qsl

import yaml
from aiohttp import web

from bench.corpus import CorpusSpec, Identity, LineMaker
from bench.fake import make_fake
from bench.run import ACCOUNT_NAME
from bot.config import load_config
from bot.logs import configure_logging, log_message
from bot.routing.context import Context
from bot.routing.dispatch import Outcome
from bot.testing.fake_wechat import start_fake_wechat
from bot.webhook.services import SERVICES, Services
from bot.wechat.messages import Message, parse_message
from bot.wechat.replies import TextReply, max_articles_for, render_reply
from bot.wechat.signature import verify_msg_signature, verify_signature
from bot.wechat.xml import parse_body
from handlers.greeting import greeting_for

_FOLLOWERS = 50


@dataclass(frozen=True, slots=True)
class StageTime:
    """One stage's cost."""

    name: str
    us: float  # per call
    in_plain: bool  # part of a plaintext request
    in_safe: bool  # part of a safe-mode request


def run_stages(n: int = 5000) -> list[StageTime]:
    """Time every stage `n` times (uvloop when installed, like `serve`)."""
    with open(os.devnull, "w") as devnull:
        try:
            import uvloop
        except ImportError:
            return asyncio.run(_stages(n, devnull))
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(_stages(n, devnull))


_ROUNDS = 3  # the best of three rounds: the least disturbed by other processes


def _timed(fn: Callable[[int], object], n: int) -> float:
    best = float("inf")
    for r in range(_ROUNDS):
        started = time.perf_counter()
        for i in range(r * n, (r + 1) * n):  # every call gets its own push
            fn(i)
        best = min(best, time.perf_counter() - started)
    return best / n * 1e6


async def _atimed(fn: Callable[[int], Awaitable[object]], n: int) -> float:
    best = float("inf")
    for r in range(_ROUNDS):
        started = time.perf_counter()
        for i in range(r * n, (r + 1) * n):
            await fn(i)
        best = min(best, time.perf_counter() - started)
    return best / n * 1e6


def _split(line: bytes) -> tuple[dict[str, str], bytes]:
    target, _, body = line.rstrip(b"\n").partition(b"\t")
    query = target.decode("ascii").split("?", 1)[1]
    return dict(parse_qsl(query)), body


async def _stages(n: int, devnull: TextIO) -> list[StageTime]:
    workdir = Path(tempfile.mkdtemp(prefix="wechat-bench-stages-"))
    identity = Identity.fresh()
    fake_runner, fake_url = await start_fake_wechat(
        fake=make_fake(_FOLLOWERS, identity.app_id, identity.app_secret)
    )
    settings = {
        "token": identity.token,
        "app_id": identity.app_id,
        "app_secret": identity.app_secret,
        "encoding_aes_key": identity.aes_key,
        "api_base_url": fake_url,
        "account_name": ACCOUNT_NAME,
        "handlers": ["handlers.greeting"],
        "data_dir": str(workdir / "data"),
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    config = load_config(workdir / "config.yaml", {})
    # the shipped logging, its stream sent to /dev/null instead of stderr
    configure_logging(config.log_format, config.log_level)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    from bot.webhook.app import create_app

    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    try:
        bot = runner.app[SERVICES]
        return await _measure(bot, identity, n)
    finally:
        gc.unfreeze()
        await runner.cleanup()
        await fake_runner.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


async def _measure(bot: Services, identity: Identity, n: int) -> list[StageTime]:
    config = bot.config
    assert bot.crypto is not None
    crypto = bot.crypto
    calls = _ROUNDS * n
    plain_spec = CorpusSpec.new(identity, "plain", 2 * calls, _FOLLOWERS)
    safe_spec = dataclasses.replace(plain_spec, mode="safe", first=2 * calls)
    plain = [_split(x) for x in map(LineMaker(plain_spec).line, range(2 * calls))]
    safe = [_split(x) for x in map(LineMaker(safe_spec).line, range(2 * calls, 3 * calls))]
    fields = [parse_body(body) for _, body in plain]
    msgs = [parse_message(f) for f in fields]
    # warm-up: every follower's profile and preferences are cached, as after the bench warm-up
    for msg in msgs[:_FOLLOWERS]:
        await greeting_for(_context(bot, msg))
    await asyncio.sleep(0.2)
    gc.collect()
    gc.freeze()  # the request lists above stay out of the collector's way while timing

    out: list[StageTime] = []

    def add(name: str, us: float, plain_too: bool = True, safe_too: bool = True) -> None:
        out.append(StageTime(name, us, plain_too, safe_too))

    add(
        "signature: verify_signature",
        _timed(
            lambda i: verify_signature(
                config.token,
                plain[i][0]["timestamp"],
                plain[i][0]["nonce"],
                plain[i][0]["signature"],
            ),
            n,
        ),
    )

    async def replay(i: int) -> object:
        params, body = plain[i]
        return await bot.replay.check(params["timestamp"], params["nonce"], body)

    add("replay guard: ReplayGuard.check (fresh nonce)", await _atimed(replay, n))
    add("parse: parse_body (plaintext XML)", _timed(lambda i: parse_body(plain[i][1]), n))
    add("parse: parse_message", _timed(lambda i: parse_message(fields[i]), n))

    def decrypt(i: int) -> object:
        params, body = safe[i]
        encrypt = str(parse_body(body)["Encrypt"])
        assert verify_msg_signature(
            config.token, params["timestamp"], params["nonce"], encrypt, params["msg_signature"]
        )
        return parse_body(crypto.decrypt(encrypt))

    add(
        "decrypt: envelope parse + msg_signature + AES + inner parse",
        _timed(decrypt, n),
        plain_too=False,
    )

    async def ledger(i: int) -> object:
        msg = msgs[calls + i]  # keys no other stage used: the ledger sees new messages

        async def produce() -> tuple[Message, Outcome]:
            return msg, Outcome(None, None)

        return await bot.ledger.answer(msg.dedup_key, produce, time.monotonic() + 4.0)

    add("dedup ledger: ReplyLedger.answer (task + wait, no work)", await _atimed(ledger, n))

    async def dispatch(i: int) -> object:
        msg = msgs[i]
        return await bot.dispatcher.dispatch(msg, _context(bot, msg))

    add(
        "route + greet: Context + Dispatcher.dispatch (greeting, histogram)",
        await _atimed(dispatch, n),
    )

    async def greet(i: int) -> object:
        return await greeting_for(_context(bot, msgs[i]))

    add("  of which greet: greeting_for (cached profile)", await _atimed(greet, n), False, False)
    now = int(time.time())
    add(
        "render: render_reply (text)",
        _timed(
            lambda i: render_reply(
                TextReply("你好，Bench 0！欢迎关注Bench Account。"),
                to_user=msgs[i].from_user,
                from_user=msgs[i].to_user,
                create_time=now,
                max_articles=max_articles_for(msgs[i].msg_type),
            ),
            n,
        ),
    )
    reply_xml = render_reply(
        TextReply("Hello, Bench 3! Welcome to Bench Account."),
        to_user="o_bench_00003",
        from_user=identity.account,
        create_time=now,
    )
    add(
        "encrypt reply: MessageCrypto.encrypt_reply",
        _timed(lambda i: crypto.encrypt_reply(reply_xml, config.token), n),
        plain_too=False,
    )
    metrics = bot.metrics
    add(
        "metrics: requests counter (handler histogram: in dispatch)",
        _timed(lambda i: metrics.count_request("text", "replied"), n),
    )
    started = time.perf_counter()
    add(
        "logging: log_message (one INFO line, text, to /dev/null)",
        _timed(
            lambda i: log_message(
                msg_id=str(i),
                msg_type="text",
                handler="greeting.greet",
                outcome="replied",
                started=started,
            ),
            n,
        ),
    )
    add(
        "response: web.Response(text=...)",
        _timed(lambda i: web.Response(text=reply_xml, content_type="application/xml"), n),
    )
    return out


def _context(bot: Services, msg: Message) -> Context:
    return Context(msg, bot.config, bot.api, bot.followers, bot.profiles)


def render_stages(stages: list[StageTime]) -> str:
    """The stage table with per-mode sums."""
    width = max(len(s.name) for s in stages)
    lines = [f"{'stage (alone, in process)':{width}}  µs/call"]
    lines += [f"{s.name:{width}}  {s.us:7.1f}" for s in stages]
    for mode, pick in (("plain", "in_plain"), ("safe", "in_safe")):
        total = sum(s.us for s in stages if getattr(s, pick))
        lines.append(
            f"{'sum for one ' + mode + ' request (bot code, no HTTP)':{width}}  {total:7.1f}"
        )
    return "\n".join(lines)
