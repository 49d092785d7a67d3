"""The dispatcher: first match wins, SKIP, return values, failures, unfollows, load_router."""

from __future__ import annotations

import logging
import re
import types
from typing import cast

import pytest

from bot.client.api import UserInfo, WeChatAPI
from bot.client.profiles import ProfileCache
from bot.config import Config, ConfigError
from bot.followers.store import FollowerStore, Preferences
from bot.routing import dispatch as dispatch_module
from bot.routing.context import Context
from bot.routing.dispatch import Dispatcher, Outcome, load_router
from bot.routing.router import SKIP, HandlerResult, Router
from bot.storage.base import StorageUnavailable
from bot.storage.memory import MemoryStorage
from bot.testing.simulator import event_fields, text_fields
from bot.wechat.messages import Message, parse_message
from bot.wechat.replies import ImageReply, TextReply

OPENID = "o_dispatch_test"


class StubAPI:
    """Answers `user/info` with a fixed profile and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def get_user_info(self, openid: str, lang: str = "zh_CN") -> UserInfo:
        self.calls += 1
        return UserInfo.from_raw({"openid": openid, "subscribe": 1, "remark": "Wang"})


class BrokenStorage(MemoryStorage):
    """A store whose record deletes fail, as Redis does when it is unreachable."""

    async def delete_record(self, name: str) -> None:
        raise StorageUnavailable("down")


class Harness:
    """A dispatcher's surroundings: real follower store and profile cache over memory stores."""

    def __init__(self, storage: MemoryStorage | None = None) -> None:
        self.api = StubAPI()
        self.storage = storage if storage is not None else MemoryStorage()
        self.shared = MemoryStorage()
        self.followers = FollowerStore(self.storage)
        self.profiles = ProfileCache(
            cast(WeChatAPI, self.api), size=10, ttl=60.0, timeout=1.0, shared=self.shared
        )
        self.config = Config()

    def context(self, msg: Message) -> Context:
        """A fresh context for `msg`."""
        return Context(msg, self.config, cast(WeChatAPI, self.api), self.followers, self.profiles)

    async def dispatch(self, router: Router, msg: Message) -> Outcome:
        """Dispatch `msg` through `router`'s routes."""
        return await Dispatcher(list(router.routes())).dispatch(msg, self.context(msg))


def text(content: str, msg_id: str = "5001") -> Message:
    """A parsed text message."""
    return parse_message(text_fields(OPENID, content, msg_id=msg_id))


@pytest.fixture
def harness() -> Harness:
    return Harness()


async def test_first_matching_route_wins(harness: Harness) -> None:
    router = Router()

    @router.text("hi")
    async def exact(msg: Message, ctx: Context) -> HandlerResult:
        return "exact"

    @router.text()
    async def anything(msg: Message, ctx: Context) -> HandlerResult:
        return "any"

    assert await harness.dispatch(router, text("hi")) == Outcome(TextReply("exact"), exact_name())
    outcome = await harness.dispatch(router, text("other"))
    assert outcome.reply == TextReply("any")
    assert outcome.handler is not None and outcome.handler.endswith(".anything")


def exact_name() -> str:
    """The route name of `exact` in test_first_matching_route_wins."""
    return f"{__name__}.test_first_matching_route_wins.<locals>.exact"


async def test_skip_passes_to_the_next_route_and_match_is_reset(harness: Harness) -> None:
    router = Router()
    seen: list[re.Match[str] | None] = []

    @router.text(re.compile(r"(\d+)"))
    async def numbers(msg: Message, ctx: Context) -> HandlerResult:
        seen.append(ctx.match)
        return SKIP

    @router.text()
    async def fallback(msg: Message, ctx: Context) -> HandlerResult:
        seen.append(ctx.match)
        return "fallback"

    outcome = await harness.dispatch(router, text("order 42"))
    assert outcome.reply == TextReply("fallback")
    first, second = seen
    assert first is not None and first[1] == "42"
    assert second is None


async def test_all_routes_skipping_answers_nothing(harness: Harness) -> None:
    router = Router()

    @router.message()
    async def skipper(msg: Message, ctx: Context) -> HandlerResult:
        return SKIP

    assert await harness.dispatch(router, text("x")) == Outcome(None, None)


async def test_no_route_answers_nothing(harness: Harness) -> None:
    router = Router()

    @router.text("only this")
    async def picky(msg: Message, ctx: Context) -> HandlerResult:
        return "never"

    assert await harness.dispatch(router, text("other")) == Outcome(None, None)


@pytest.mark.parametrize(
    ("result", "reply"),
    [
        ("hello", TextReply("hello")),
        ("", None),
        (None, None),
        (ImageReply("media_1"), ImageReply("media_1")),
    ],
)
async def test_return_values(harness: Harness, result: HandlerResult, reply: object) -> None:
    router = Router()

    @router.text()
    async def answer(msg: Message, ctx: Context) -> HandlerResult:
        return result

    outcome = await harness.dispatch(router, text("x"))
    assert outcome.reply == reply
    assert outcome.failed is False
    assert outcome.handler == f"{__name__}.test_return_values.<locals>.answer"


async def test_raising_handler_fails_and_is_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    router = Router()

    @router.text()
    async def broken(msg: Message, ctx: Context) -> HandlerResult:
        raise RuntimeError("boom")

    @router.message()
    async def after(msg: Message, ctx: Context) -> HandlerResult:
        return "not reached"

    name = f"{__name__}.test_raising_handler_fails_and_is_logged.<locals>.broken"
    with caplog.at_level(logging.ERROR, logger="bot.routing.dispatch"):
        outcome = await harness.dispatch(router, text("x", msg_id="778899"))
    assert outcome == Outcome(None, name, failed=True)
    (record,) = caplog.records
    assert record.getMessage() == f"handler {name} failed on message 778899"
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_raising_handler_on_an_event_logs_the_dedup_key(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    router = Router()

    @router.event("CLICK")
    async def broken(msg: Message, ctx: Context) -> HandlerResult:
        raise ValueError("bad")

    msg = parse_message(event_fields(OPENID, "CLICK", "menu_a", create_time=1700000000))
    with caplog.at_level(logging.ERROR, logger="bot.routing.dispatch"):
        outcome = await harness.dispatch(router, msg)
    assert outcome.failed is True
    assert caplog.records[0].getMessage().endswith(f"message {OPENID}:1700000000:click:menu_a")


async def test_unsubscribe_deletes_follower_data_and_cached_profile(harness: Harness) -> None:
    await harness.followers.set_name(OPENID, "Ada")
    await harness.followers.state(OPENID).set("step", "2")
    assert await harness.profiles.get(OPENID) is not None
    assert await harness.shared.get(f"profile:{OPENID}") is not None
    other = "o_someone_else"
    await harness.followers.set_name(other, "Bob")

    router = Router()
    seen: list[Preferences] = []

    @router.event("unsubscribe")
    async def goodbye(msg: Message, ctx: Context) -> HandlerResult:
        seen.append(await ctx.preferences())
        return None

    outcome = await harness.dispatch(router, parse_message(event_fields(OPENID, "unsubscribe")))
    assert outcome.handler is not None and outcome.handler.endswith(".goodbye")
    assert seen == [Preferences(None, None)]  # deleted before the handler ran
    assert await harness.followers.preferences(OPENID) == Preferences(None, None)
    assert await harness.followers.state(OPENID).items() == {}
    assert await harness.shared.get(f"profile:{OPENID}") is None
    assert len(harness.profiles) == 0
    assert await harness.followers.preferences(other) == Preferences("Bob", None)
    await harness.profiles.get(OPENID)
    assert harness.api.calls == 2  # forgotten: fetched again


async def test_unsubscribe_with_storage_down_still_dispatches(
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = Harness(BrokenStorage())
    router = Router()

    @router.event("unsubscribe")
    async def goodbye(msg: Message, ctx: Context) -> HandlerResult:
        return None

    with caplog.at_level(logging.ERROR, logger="bot.routing.dispatch"):
        outcome = await harness.dispatch(router, parse_message(event_fields(OPENID, "unsubscribe")))
    assert outcome.handler is not None and outcome.handler.endswith(".goodbye")
    assert outcome.failed is False
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["could not delete the data of a follower who unfollowed"]


async def test_other_events_keep_follower_data(harness: Harness) -> None:
    await harness.followers.set_name(OPENID, "Ada")
    await harness.dispatch(Router(), parse_message(event_fields(OPENID, "subscribe")))
    assert await harness.followers.preferences(OPENID) == Preferences("Ada", None)


async def test_observe_gets_name_seconds_and_failed(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = iter([10.0, 10.25, 20.0, 20.5])
    fake_time = types.SimpleNamespace(perf_counter=lambda: next(ticks))
    monkeypatch.setattr(dispatch_module, "time", fake_time)
    router = Router()

    @router.text()
    async def skipper(msg: Message, ctx: Context) -> HandlerResult:
        return SKIP

    @router.message()
    async def broken(msg: Message, ctx: Context) -> HandlerResult:
        raise RuntimeError("boom")

    observed: list[tuple[str, float, bool]] = []
    dispatcher = Dispatcher(
        list(router.routes()), observe=lambda n, s, f: observed.append((n, s, f))
    )
    msg = text("x")
    await dispatcher.dispatch(msg, harness.context(msg))
    prefix = f"{__name__}.test_observe_gets_name_seconds_and_failed.<locals>"
    assert observed == [(f"{prefix}.skipper", 0.25, False), (f"{prefix}.broken", 0.5, True)]


async def test_routes_of_other_types_are_not_tried(harness: Harness) -> None:
    router = Router()
    calls: list[str] = []

    @router.message("image")
    async def images(msg: Message, ctx: Context) -> HandlerResult:
        calls.append("image")
        return "img"

    @router.message()
    async def everything(msg: Message, ctx: Context) -> HandlerResult:
        calls.append("any")
        return "any"

    dispatcher = Dispatcher(list(router.routes()))
    for _ in range(2):  # the second pass uses the per-type cache
        msg = text("x")
        assert (await dispatcher.dispatch(msg, harness.context(msg))).reply == TextReply("any")
    assert calls == ["any", "any"]


def test_load_router_includes_modules_in_order() -> None:
    root = load_router(["handlers.keywords", "handlers.greeting"])
    modules = [r.handler.__module__ for r in root.routes()]
    assert modules[0] == "handlers.keywords"
    assert modules[-1] == "handlers.greeting"
    assert sorted(set(modules)) == ["handlers.greeting", "handlers.keywords"]
    first_greeting = modules.index("handlers.greeting")
    assert set(modules[first_greeting:]) == {"handlers.greeting"}


def test_load_router_unknown_module() -> None:
    with pytest.raises(ConfigError) as info:
        load_router(["handlers.no_such_module"])
    assert info.value.key == "handlers"
    assert info.value.problem.startswith("cannot import 'handlers.no_such_module': ")


def test_load_router_module_without_router() -> None:
    with pytest.raises(ConfigError) as info:
        load_router(["bot.wechat.signature"])
    assert (
        str(info.value)
        == "config: handlers: module 'bot.wechat.signature' has no `router = Router()`"
    )
