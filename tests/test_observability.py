"""Metrics and logs after a known sequence of messages, through the real HTTP path.

The bot runs this module's routes (a failing and a slow handler) before the greeting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from bot import Context, Message, Router
from bot.logs import JsonFormatter, configure_logging
from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import (
    TEST_AES_KEY,
    TEST_SECRET,
    TEST_TOKEN,
    BotFactory,
    BotUnderTest,
)
from bot.testing.simulator import Mode, text_fields
from bot.webhook.services import SERVICES

router = Router("observability")
HANDLERS = ["test_observability", "handlers.greeting"]
MESSAGE_KEYS = {"msg_id", "msg_type", "handler", "outcome", "latency_ms"}


@router.text(re.compile(r"^boom\b"))
async def boom(msg: Message, ctx: Context) -> str:
    """Raises (without the message's content in the error)."""
    raise RuntimeError("handler exploded")


@router.text(re.compile(r"^slow ([\d.]+) ?(.*)$", re.DOTALL))
async def slow(msg: Message, ctx: Context) -> str:
    """Sleeps, then answers the rest of the text (which goes out late)."""
    assert ctx.match is not None
    await asyncio.sleep(float(ctx.match[1]))
    return ctx.match[2] or "done"


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(bot: BotUnderTest) -> Samples:
    """/metrics as {(sample name, labels): value}."""
    async with bot.client.get("/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def wait_for_metric(
    bot: BotUnderTest, name: str, expected: float, timeout: float = 10.0, **labels: str
) -> None:
    """Poll /metrics until `name{labels}` reaches `expected` (late deliveries finish later)."""
    deadline = time.monotonic() + timeout
    while value(await scrape(bot), name, **labels) < expected:
        assert time.monotonic() < deadline, f"{name}{labels} never reached {expected}"
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Logged:
    """The line a message should log (msg_id None: an event, whose id is its dedup key)."""

    msg_id: str | None
    msg_type: str
    handler: str | None
    outcome: str


GREET = "handlers.greeting.greet"


@dataclass
class Played:
    """What the sequence sent: the expected message lines, and the access tokens the bot used."""

    expected: list[Logged]
    tokens: list[str]


async def play_sequence(bot: BotUnderTest, fake: FakeWeChat, marker: str) -> Played:
    """A known sequence covering every outcome; every text carries `marker`."""
    expected: list[Logged] = []
    api = bot.app[SERVICES].api

    async def text(
        openid: str, content: str, handler: str | None, outcome: str, msg_id: str | None = None
    ) -> str | None:
        fields = text_fields(openid, content, msg_id=msg_id)
        expected.append(Logged(str(fields["MsgId"]), "text", handler, outcome))
        reply = await bot.send_fields(fields)
        assert reply.status == 200
        return reply.content

    # 1. greeted (token fetched, profile fetched); 2. the same MsgId again: a retry
    first = await text("o_demo_wang", f"hello {marker}", GREET, "replied", msg_id="7700001")
    assert first == "Hello! Welcome to Test Account."
    again = await text("o_demo_wang", f"hello {marker}", None, "duplicate", msg_id="7700001")
    assert again == first
    tokens = [await api.tokens.get()]
    # 3. greeted again: the profile is cached, no upstream call
    assert (
        await text("o_demo_wang", f"你好 {marker}", GREET, "replied")
        == "你好！欢迎关注Test Account。"
    )
    # 4. a handler that raises
    assert (
        await text("o_demo_wang", f"boom {marker}", "test_observability.boom", "handler_error")
        is None
    )
    # 5. a follow event (its own profile fetch)
    expected.append(Logged(None, "event", "handlers.greeting.welcome", "replied"))
    followed = await bot.follow("o_demo_alice")
    assert followed.content == "Hello, Alice! Welcome to Test Account."
    # 6. late, delivered through the customer-service API
    assert await text("o_demo_wang", f"slow 1.2 late one {marker}", None, "late") is None
    await wait_for_metric(
        bot, "wechat_bot_customer_service_deliveries_total", 1, outcome="delivered"
    )
    # 7. late, refused for good by the platform (43004: not a follower any more)
    fake.fail_with_errcode("custom_send", 43004, errmsg="require subscribe")
    assert await text("o_demo_wang", f"slow 1.2 late two {marker}", None, "late") is None
    await wait_for_metric(bot, "wechat_bot_customer_service_deliveries_total", 1, outcome="dropped")
    # 8. late, the platform down until the delivery deadline passes
    fake.fail_with_status("custom_send", 503, times=100)
    assert await text("o_demo_wang", f"slow 1.2 late three {marker}", None, "late") is None
    await wait_for_metric(bot, "wechat_bot_customer_service_deliveries_total", 1, outcome="failed")
    fake.reset()
    # 9. every token expires: the next call is refused (42001), the bot refreshes and retries
    fake.expire_tokens()
    greeting = await text("o_demo_lin", f"hi {marker}", GREET, "replied")
    assert greeting == "Hello, 林老師! Welcome to Test Account."
    tokens.append(await api.tokens.get())
    assert tokens[0] != tokens[1]
    # 10. a forged request is refused before it is a message (no message line)
    async with bot.client.post(
        bot.config.webhook_path,
        params={"signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "1"},
        data=b"<xml/>",
    ) as resp:
        assert resp.status == 403
    return Played(expected, tokens)


async def start_bot(wechat_bot: BotFactory, mode: Mode = "plain") -> BotUnderTest:
    """The bot with generous budgets: greetings answer in time, `slow 1.2` goes out late."""
    return await wechat_bot(
        handlers=HANDLERS,
        mode=mode,
        reply_budget=0.8,
        profile_timeout=0.5,
        delivery_deadline=0.2,  # under the shortest backoff (0.25 s): one attempt, then give up
        api_max_attempts=1,
    )


# -- metrics ---------------------------------------------------------------------------------------


async def test_metrics_after_a_known_sequence(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat
) -> None:
    bot = await start_bot(wechat_bot)
    await play_sequence(bot, fake_wechat, "m")
    m = await scrape(bot)

    # requests by message type and outcome
    assert value(m, "wechat_bot_requests_total", msg_type="text", outcome="replied") == 3
    assert value(m, "wechat_bot_requests_total", msg_type="text", outcome="duplicate") == 1
    assert value(m, "wechat_bot_requests_total", msg_type="text", outcome="handler_error") == 1
    assert value(m, "wechat_bot_requests_total", msg_type="text", outcome="late") == 3
    assert value(m, "wechat_bot_requests_total", msg_type="event", outcome="replied") == 1
    assert value(m, "wechat_bot_requests_total", msg_type="-", outcome="rejected_403") == 1

    # handler latency by handler: three greetings, one welcome, three slow runs, one failure
    greet = "handlers.greeting.greet"
    assert value(m, "wechat_bot_handler_seconds_count", handler=greet) == 3
    assert value(m, "wechat_bot_handler_seconds_bucket", handler=greet, le="+Inf") == 3
    assert value(m, "wechat_bot_handler_seconds_bucket", handler=greet, le="0.5") == 3
    assert value(m, "wechat_bot_handler_seconds_count", handler="handlers.greeting.welcome") == 1
    slow_name = "test_observability.slow"
    assert value(m, "wechat_bot_handler_seconds_count", handler=slow_name) == 3
    assert value(m, "wechat_bot_handler_seconds_bucket", handler=slow_name, le="1.0") == 0
    assert value(m, "wechat_bot_handler_seconds_bucket", handler=slow_name, le="2.5") == 3
    assert value(m, "wechat_bot_handler_seconds_sum", handler=slow_name) >= 3 * 1.2
    assert value(m, "wechat_bot_handler_errors_total", handler="test_observability.boom") == 1

    # budget overruns and dedup hits
    assert value(m, "wechat_bot_reply_budget_overruns_total") == 3
    assert value(m, "wechat_bot_dedup_hits_total") == 1

    # upstream calls by endpoint and errcode
    calls = {
        (dict(labels)["endpoint"], dict(labels)["errcode"]): v
        for (name, labels), v in m.items()
        if name == "wechat_bot_upstream_calls_total"
    }
    assert calls == {
        ("stable_token", "0"): 2,
        ("user_info", "0"): 3,  # wang, alice, lin
        ("user_info", "42001"): 1,  # lin's first try, with the expired token
        ("custom_send", "0"): 1,
        ("custom_send", "43004"): 1,
        ("custom_typing", "0"): 3,  # each slow 1.2 handler showed the typing indicator once
        ("custom_send", "-2"): 1,  # HTTP 503, counted as a transport failure
    }
    assert value(m, "wechat_bot_upstream_seconds_count", endpoint="user_info") == 4

    # token refreshes, customer-service deliveries and their failures
    assert value(m, "wechat_bot_token_refreshes_total") == 2
    for outcome, count in (("delivered", 1), ("dropped", 1), ("failed", 1), ("unsupported", 0)):
        got = value(m, "wechat_bot_customer_service_deliveries_total", outcome=outcome)
        assert got == count, outcome
    assert value(m, "wechat_bot_handlers_in_flight") == 0
    assert fake_wechat.counters["stable_token"] == 1  # counted since step 8: step 9's refresh


# -- logs ------------------------------------------------------------------------------------------


def check_message_line(line: dict[str, object], want: Logged) -> None:
    """One message line against what the sequence expects of it."""
    assert line["msg_type"] == want.msg_type
    assert line["handler"] == want.handler
    assert line["outcome"] == want.outcome
    if want.msg_id is not None:
        assert line["msg_id"] == want.msg_id
    else:
        assert isinstance(line["msg_id"], str) and line["msg_id"].startswith("o_demo_alice")
    latency = line["latency_ms"]
    assert isinstance(latency, float | int)
    # late replies answer within the budget, long before WeChat's 5 s
    assert 0 <= latency < 5000


async def test_exactly_one_info_line_per_message_with_its_fields(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bot = await start_bot(wechat_bot)
    played = await play_sequence(bot, fake_wechat, "m")
    lines = [r for r in caplog.records if r.name == "bot.messages"]
    assert len(lines) == len(played.expected) == 9
    for record, want in zip(lines, played.expected, strict=True):
        assert record.levelno == logging.INFO
        check_message_line({k: record.__dict__[k] for k in MESSAGE_KEYS}, want)
        assert f"outcome={want.outcome}" in record.getMessage()


@contextmanager
def production_logging(fmt: str) -> Iterator[None]:
    """`configure_logging` as `serve` calls it, undone afterwards (it replaces root handlers)."""
    root = logging.getLogger()
    access = logging.getLogger("aiohttp.access")
    saved = (root.handlers[:], root.level, access.level)
    configure_logging(fmt, "INFO")
    try:
        yield
    finally:
        root.handlers[:], _, _ = saved
        root.setLevel(saved[1])
        access.setLevel(saved[2])


async def test_json_log_lines_are_json_with_the_message_fields(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = await start_bot(wechat_bot)
    with production_logging("json"):
        played = await play_sequence(bot, fake_wechat, "m")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert all(isinstance(line, dict) and line["level"] for line in lines)
    messages = [line for line in lines if line["logger"] == "bot.messages"]
    assert len(messages) == 9
    for line, want in zip(messages, played.expected, strict=True):
        assert line.keys() >= MESSAGE_KEYS | {"ts", "level", "msg"}
        assert line["level"] == "info"
        check_message_line(line, want)
    # other records are JSON too: the failing handler's traceback travels inside the object
    failure = next(line for line in lines if line["logger"] == "bot.routing.dispatch")
    assert failure["level"] == "error"
    assert "RuntimeError: handler exploded" in failure["exc"]


async def test_no_content_or_secret_reaches_any_log_record(
    wechat_bot: BotFactory, fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = f"MARK{uuid.uuid4().hex[:20]}"  # short enough to be a name
    bot = await start_bot(wechat_bot, mode="safe")
    played = await play_sequence(bot, fake_wechat, marker)
    # the marker as a name too, so it comes back in replies and in storage
    named = await bot.send_text("o_demo_sam", f"call me {marker}")
    assert named.content == f"Got it. I'll call you {marker}."
    greeted = await bot.send_text("o_demo_sam", "hello")
    assert greeted.content == f"Hello, {marker}! Welcome to Test Account."
    secrets = {
        "message content": marker,
        "server token": TEST_TOKEN,
        "app secret": TEST_SECRET,
        "AES key": TEST_AES_KEY,
        "first access token": played.tokens[0],
        "second access token": played.tokens[1],
    }
    records = [
        r
        for r in caplog.records
        # the test servers' access logs are not the bot's: `serve` runs without an access log
        # and configure_logging silences it, and the fake platform sees the token by design
        if r.levelno >= logging.INFO and r.name != "aiohttp.access"
    ]
    assert len([r for r in records if r.name == "bot.messages"]) == 11
    plain, as_json = logging.Formatter(), JsonFormatter()
    for record in records:
        rendered = plain.format(record) + as_json.format(record) + repr(record.__dict__)
        for what, secret in secrets.items():
            assert secret not in rendered, f"{what} in a {record.name} record: {record.msg!r}"


def test_access_tokens_and_secrets_are_masked_in_every_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = logging.getLogger("bot.test_masking")
    url = URL("https://api.weixin.qq.com/cgi-bin/user/info?access_token=TOKabc123&openid=o_x")
    for fmt in ("text", "json"):
        with production_logging(fmt):
            log.warning("GET %s failed", url)  # a yarl.URL argument, as aiohttp hands out
            log.info("GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=SECdef456")
            try:
                raise ValueError(
                    "bad answer from /cgi-bin/message/custom/send?access_token=TOKghi789"
                )
            except ValueError:
                log.exception("send failed")
            log.info("%d handlers", "not a number")  # a broken call must not raise from the filter
        err = capsys.readouterr().err
        for secret in ("TOKabc123", "SECdef456", "TOKghi789"):
            assert secret not in err, (fmt, err)
        assert "user/info?access_token=***&openid=o_x" in err
        assert "appid=wx1&secret=***" in err
        assert "custom/send?access_token=***" in err
