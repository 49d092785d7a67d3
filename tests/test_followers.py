"""Follower records (preferences, handlers' state) and the Context's name and language."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from bot.client.api import UserInfo, WeChatAPI, WeChatAPIError
from bot.client.profiles import ProfileCache
from bot.config import Config
from bot.followers.store import FollowerStore, Preferences
from bot.routing.context import Context
from bot.storage.embedded import EmbeddedStorage
from bot.storage.fallback import FallbackStorage
from bot.storage.memory import MemoryStorage
from bot.storage.redis import RedisStorage
from bot.testing.simulator import event_fields, text_fields
from bot.wechat.messages import Message, parse_message

ADA = "o_ada"
BOB = "o_bob"


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def store(storage: MemoryStorage) -> FollowerStore:
    return FollowerStore(storage)


# --- FollowerStore and FollowerState --------------------------------------------------------


async def test_preferences_default_to_none(store: FollowerStore) -> None:
    assert await store.preferences(ADA) == Preferences(None, None)


async def test_preferences_round_trip(store: FollowerStore) -> None:
    await store.set_name(ADA, "Ada")
    assert await store.preferences(ADA) == Preferences("Ada", None)
    await store.set_language(ADA, "en")
    assert await store.preferences(ADA) == Preferences("Ada", "en")
    await store.set_name(ADA, "Countess")
    assert await store.preferences(ADA) == Preferences("Countess", "en")


async def test_empty_name_reads_as_none(store: FollowerStore) -> None:
    await store.set_name(ADA, "")
    assert await store.preferences(ADA) == Preferences(None, None)


async def test_preferences_are_per_follower(store: FollowerStore) -> None:
    await store.set_name(ADA, "Ada")
    await store.set_language(BOB, "zh_TW")
    assert await store.preferences(ADA) == Preferences("Ada", None)
    assert await store.preferences(BOB) == Preferences(None, "zh_TW")


async def test_everything_lives_in_one_record(store: FollowerStore, storage: MemoryStorage) -> None:
    await store.set_name(ADA, "Ada")
    await store.state(ADA).set("step", "2")
    assert await storage.get_record(f"follower:{ADA}") == {"pref:name": "Ada", "state:step": "2"}


async def test_forget_deletes_preferences_and_state(store: FollowerStore) -> None:
    await store.set_name(ADA, "Ada")
    await store.set_language(ADA, "en")
    await store.state(ADA).set("step", "2")
    await store.set_name(BOB, "Bob")
    await store.forget(ADA)
    assert await store.preferences(ADA) == Preferences(None, None)
    assert await store.state(ADA).items() == {}
    assert await store.preferences(BOB) == Preferences("Bob", None)
    await store.forget("o_never_seen")  # no error


async def test_state_get_set_delete(store: FollowerStore) -> None:
    state = store.state(ADA)
    assert await state.get("step") is None
    await state.set("step", "1")
    await state.set("topic", "weather")
    await state.set("step", "2")
    assert await state.get("step") == "2"
    assert await state.items() == {"step": "2", "topic": "weather"}
    await state.delete("step")
    await state.delete("missing")  # no error
    assert await state.get("step") is None
    assert await state.items() == {"topic": "weather"}


async def test_state_is_isolated_between_followers(store: FollowerStore) -> None:
    await store.state(ADA).set("step", "ada")
    await store.state(BOB).set("step", "bob")
    await store.state(BOB).delete("step")
    assert await store.state(ADA).items() == {"step": "ada"}
    assert await store.state(BOB).items() == {}


async def test_state_keys_do_not_collide_with_preferences(store: FollowerStore) -> None:
    await store.set_name(ADA, "Ada")
    await store.state(ADA).set("pref:name", "not a name")
    await store.state(ADA).set("name", "neither")
    assert await store.preferences(ADA) == Preferences("Ada", None)
    assert await store.state(ADA).items() == {"pref:name": "not a name", "name": "neither"}


# --- Context: name and language -------------------------------------------------------------


class StubAPI:
    """`user/info` answering a fixed profile (or failing), counting calls."""

    def __init__(self, raw: dict[str, Any] | None) -> None:
        self.raw = raw
        self.calls = 0

    async def get_user_info(self, openid: str, lang: str = "zh_CN") -> UserInfo:
        self.calls += 1
        if self.raw is None:
            raise WeChatAPIError(40003, "invalid openid", "user_info")
        return UserInfo.from_raw({"openid": openid, "subscribe": 1, **self.raw})


def text(content: str) -> Message:
    """A text message from ADA."""
    return parse_message(text_fields(ADA, content, msg_id="9001"))


def subscribe() -> Message:
    """A subscribe event from ADA (no text)."""
    return parse_message(event_fields(ADA, "subscribe"))


class World:
    """A Context's surroundings over memory stores."""

    def __init__(self, raw: dict[str, Any] | None = None, default_language: str = "zh_CN") -> None:
        self.api = StubAPI(raw)
        self.followers = FollowerStore(MemoryStorage())
        self.profiles = ProfileCache(cast(WeChatAPI, self.api), size=10, ttl=60.0, timeout=1.0)
        self.config = Config(default_language=default_language)

    def context(self, msg: Message) -> Context:
        """A fresh context for `msg`."""
        return Context(msg, self.config, cast(WeChatAPI, self.api), self.followers, self.profiles)


async def test_context_exposes_openid_text_and_state() -> None:
    world = World()
    ctx = world.context(text("hello"))
    assert (ctx.openid, ctx.text) == (ADA, "hello")
    await ctx.state.set("k", "v")
    assert await world.followers.state(ADA).get("k") == "v"
    assert world.context(subscribe()).text == ""


@pytest.mark.parametrize(
    ("own", "raw", "expected"),
    [
        ("Ada", {"nickname": "Nick", "remark": "Remark"}, "Ada"),
        (None, {"nickname": "Nick", "remark": "Remark"}, "Nick"),
        (None, {"nickname": "  Nick  ", "remark": "Remark"}, "Nick"),
        (None, {"nickname": "", "remark": "Remark"}, "Remark"),
        (None, {"nickname": "   ", "remark": " Remark "}, "Remark"),
        (None, {"nickname": "", "remark": ""}, None),
        (None, None, None),  # the profile failed
    ],
)
async def test_name_precedence(
    own: str | None, raw: dict[str, Any] | None, expected: str | None
) -> None:
    world = World(raw)
    if own is not None:
        await world.followers.set_name(ADA, own)
    assert await world.context(text("hi")).name() == expected


async def test_own_name_needs_no_profile() -> None:
    world = World({"nickname": "Nick"})
    await world.followers.set_name(ADA, "Ada")
    assert await world.context(text("hi")).name() == "Ada"
    assert world.api.calls == 0


@pytest.mark.parametrize(
    ("choice", "content", "raw", "default", "expected"),
    [
        # the follower's choice wins over everything
        ("zh_TW", "hello", {"nickname": "N", "language": "en"}, "zh_CN", "zh_TW"),
        # a choice outside LANGUAGES is ignored
        ("fr", "hello", None, "zh_CN", "en"),
        # then the script they write in
        (None, "hello there", {"nickname": "N", "language": "zh_CN"}, "zh_CN", "en"),
        (None, "这个", {"nickname": "N", "language": "en"}, "en", "zh_CN"),
        (None, "這個", None, "en", "zh_TW"),
        # then a real profile's language: only beside a non-empty nickname
        (None, "123", {"nickname": "N", "language": "en"}, "zh_CN", "en"),
        (None, "123", {"nickname": "N", "language": "zh_HK"}, "zh_CN", "zh_TW"),
        (None, "123", {"nickname": "N", "language": "zh-TW"}, "en", "zh_TW"),
        (None, "123", {"nickname": "N", "language": "EN_US"}, "zh_CN", "en"),
        (None, "123", {"nickname": "", "language": "en"}, "zh_TW", "zh_TW"),
        (None, "123", {"nickname": "", "language": "zh_CN"}, "en", "en"),
        (None, "123", {"nickname": "N", "language": "fr"}, "zh_TW", "zh_TW"),
        (None, "123", {"nickname": "N"}, "en", "en"),
        # then the default
        (None, "123", None, "zh_TW", "zh_TW"),
    ],
)
async def test_language_precedence(
    choice: str | None,
    content: str,
    raw: dict[str, Any] | None,
    default: str,
    expected: str,
) -> None:
    world = World(raw, default_language=default)
    if choice is not None:
        await world.followers.set_language(ADA, choice)
    assert await world.context(text(content)).language() == expected


async def test_language_of_an_event_uses_the_profile_then_the_default() -> None:
    real = World({"nickname": "N", "language": "en"})
    assert await real.context(subscribe()).language() == "en"
    anonymous = World({"nickname": ""}, default_language="zh_TW")
    assert await anonymous.context(subscribe()).language() == "zh_TW"


async def test_profile_is_fetched_once_per_context() -> None:
    world = World({"nickname": "", "remark": "R"})
    ctx = world.context(text("123"))
    assert await ctx.name() == "R"
    assert await ctx.language() == "zh_CN"
    assert await ctx.profile() is not None
    assert world.api.calls == 1


async def test_failed_profile_is_asked_once_per_context() -> None:
    world = World(None)
    ctx = world.context(subscribe())
    assert await ctx.profile() is None
    assert await ctx.name() is None
    assert world.api.calls == 1


async def test_set_name_and_language_update_the_context_and_the_store() -> None:
    world = World()
    ctx = world.context(text("hi"))
    assert await ctx.preferences() == Preferences(None, None)
    await ctx.set_name("Ada")
    await ctx.set_language("en")
    assert await ctx.preferences() == Preferences("Ada", "en")
    assert await ctx.name() == "Ada"
    assert await ctx.language() == "en"
    assert await world.followers.preferences(ADA) == Preferences("Ada", "en")
    await ctx.set_name("Countess")
    assert await world.context(text("hi")).preferences() == Preferences("Countess", "en")


async def test_the_embedded_store_answers_cached_preferences_at_once(tmp_path: Path) -> None:
    storage = EmbeddedStorage(tmp_path)
    try:
        store = FollowerStore(storage)
        assert store.cached_preferences(ADA) is None  # never read: not cached
        assert await store.preferences(ADA) == Preferences(None, None)
        assert store.cached_preferences(ADA) == Preferences(None, None)
        await store.set_name(ADA, "Ada")
        await store.set_language(ADA, "en")
        assert await store.preferences(ADA) == Preferences("Ada", "en")
        assert store.cached_preferences(ADA) == Preferences("Ada", "en")
        await store.forget(ADA)
        assert await store.preferences(ADA) == Preferences(None, None)
    finally:
        await storage.close()


async def test_the_memory_store_answers_preferences_at_once(store: FollowerStore) -> None:
    assert store.cached_preferences(ADA) == Preferences(None, None)  # every record is here
    await store.set_name(ADA, "Ada")
    assert store.cached_preferences(ADA) == Preferences("Ada", None)


async def test_a_shared_store_never_answers_at_once() -> None:
    # Nothing connects: Redis would hold the one copy every instance shares.
    redis = RedisStorage("redis://127.0.0.1:1/0", "ns")
    for storage in (redis, FallbackStorage(redis, MemoryStorage())):
        assert FollowerStore(storage).cached_preferences(ADA) is None
    await redis.close()
