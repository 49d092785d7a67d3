"""Storage behaviour: one suite over every backend, then what each backend adds."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path

import pytest
import redis.asyncio
import redis_fixtures
from redis_fixtures import RedisServer, delete_namespace, require_redis_server
from support import free_port

from bot.storage import (
    EmbeddedStorage,
    FallbackStorage,
    MemoryStorage,
    RedisStorage,
    SQLiteRecords,
    Storage,
    StorageUnavailable,
    masked_url,
    open_storage,
)
from bot.storage.base import ClaimTerms, PushClaim, PushClaimed

# The Redis fixtures, bound here so pytest finds them by name.
redis_url = redis_fixtures.redis_url
redis_namespace = redis_fixtures.redis_namespace
redis_storage = redis_fixtures.redis_storage

BACKENDS = ["memory", "embedded", "redis", "fallback-redis"]
FALLBACK_LOGGER = "bot.storage.fallback"
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        """Start at an arbitrary non-zero time."""
        self.now = 1000.0

    def __call__(self) -> float:
        """The current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


class SwitchablePrimary:
    """A store in memory that can be switched off, counting the calls it receives."""

    def __init__(self) -> None:
        """Start up, with an empty table."""
        self.store = MemoryStorage()
        self.up = True
        self.calls = 0

    # A stand-in for Redis: nothing answered without a coroutine, never degraded itself.
    degraded = False
    local_table = None

    def cached_record(self, name: str) -> Mapping[str, str] | None:
        """See Storage."""
        return None

    def _check(self) -> None:
        self.calls += 1
        if not self.up:
            raise StorageUnavailable("primary switched off")

    async def get(self, key: str) -> bytes | None:
        """See Storage."""
        self._check()
        return await self.store.get(key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """See Storage."""
        self._check()
        await self.store.set(key, value, ttl)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """See Storage."""
        self._check()
        return await self.store.add(key, value, ttl)

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        """See Storage."""
        self._check()
        await self.store.set_many(items, ttl)

    async def claim_pushes(
        self,
        claims: Sequence[PushClaim],
        terms: ClaimTerms,
        writes: Sequence[tuple[str, bytes]] = (),
    ) -> list[PushClaimed]:
        """See Storage."""
        self._check()
        return await self.store.claim_pushes(claims, terms, writes)

    async def delete(self, key: str) -> None:
        """See Storage."""
        self._check()
        await self.store.delete(key)

    async def delete_if_equals(self, key: str, value: bytes) -> bool:
        """See Storage."""
        self._check()
        return await self.store.delete_if_equals(key, value)

    async def get_record(self, name: str) -> dict[str, str]:
        """See Storage."""
        self._check()
        return await self.store.get_record(name)

    async def set_record_field(self, name: str, field: str, value: str) -> None:
        """See Storage."""
        self._check()
        await self.store.set_record_field(name, field, value)

    async def delete_record_field(self, name: str, field: str) -> None:
        """See Storage."""
        self._check()
        await self.store.delete_record_field(name, field)

    async def delete_record(self, name: str) -> None:
        """See Storage."""
        self._check()
        await self.store.delete_record(name)

    async def announce(self, key: str) -> None:
        """See Storage."""
        self._check()

    def listen(self, on_stale: Callable[[str | None], None]) -> None:
        """See Storage: never calls `on_stale`."""

    async def ping(self) -> None:
        """See Storage."""
        self._check()

    async def close(self) -> None:
        """See Storage."""


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Each backend in turn; Redis ones in a fresh namespace, cleaned up afterwards."""
    backend: str = request.param
    url = namespace = ""
    store: Storage
    if backend == "memory":
        store = MemoryStorage()
    elif backend == "embedded":
        store = EmbeddedStorage(tmp_path / "data")
    else:
        url = request.getfixturevalue("redis_url")
        namespace = request.getfixturevalue("redis_namespace")
        primary = await RedisStorage.connect(url, namespace, timeout=2.0)
        store = primary if backend == "redis" else FallbackStorage(primary, MemoryStorage())
    try:
        yield store
    finally:
        await store.close()
        if backend.endswith("redis"):
            await delete_namespace(url, namespace)
        if isinstance(store, FallbackStorage):
            # The suite must have run against Redis, not the local fallback.
            assert not store.degraded


# The suite every backend passes.


async def test_get_returns_what_set_stored(storage: Storage) -> None:
    assert await storage.get("missing") is None
    await storage.set("k", b"v1", 60)
    assert await storage.get("k") == b"v1"
    await storage.set("k", b"v2", 60)
    assert await storage.get("k") == b"v2"


async def test_keys_expire_after_their_ttl(storage: Storage) -> None:
    await storage.set("short", b"1", 0.2)
    await storage.set("long", b"2", 60)
    assert await storage.get("short") == b"1"
    await asyncio.sleep(0.5)
    assert await storage.get("short") is None
    assert await storage.get("long") == b"2"


async def test_add_stores_only_when_absent(storage: Storage) -> None:
    assert await storage.add("k", b"first", 60) is True
    assert await storage.add("k", b"second", 60) is False
    assert await storage.get("k") == b"first"


async def test_add_succeeds_again_once_the_key_expired(storage: Storage) -> None:
    assert await storage.add("k", b"first", 0.2) is True
    await asyncio.sleep(0.5)
    assert await storage.add("k", b"second", 60) is True
    assert await storage.get("k") == b"second"


async def test_concurrent_adds_of_one_key_have_exactly_one_winner(storage: Storage) -> None:
    results = await asyncio.gather(*(storage.add("lock", f"{i}".encode(), 60) for i in range(20)))
    assert results.count(True) == 1
    winner = results.index(True)
    assert await storage.get("lock") == f"{winner}".encode()


async def test_delete_removes_a_key_and_ignores_a_missing_one(storage: Storage) -> None:
    await storage.set("k", b"v", 60)
    await storage.delete("k")
    assert await storage.get("k") is None
    await storage.delete("never-set")
    assert await storage.add("k", b"again", 60) is True


async def test_delete_if_equals_only_removes_the_matching_value(storage: Storage) -> None:
    await storage.set("lock", b"token-a", 60)
    assert await storage.delete_if_equals("lock", b"token-b") is False
    assert await storage.get("lock") == b"token-a"
    assert await storage.delete_if_equals("lock", b"token-a") is True
    assert await storage.get("lock") is None
    assert await storage.delete_if_equals("lock", b"token-a") is False


async def test_records_hold_fields_until_deleted(storage: Storage) -> None:
    assert await storage.get_record("follower:o1") == {}
    await storage.set_record_field("follower:o1", "name", "Ann")
    await storage.set_record_field("follower:o1", "lang", "en")
    await storage.set_record_field("follower:o2", "name", "Bob")
    assert await storage.get_record("follower:o1") == {"name": "Ann", "lang": "en"}
    await storage.set_record_field("follower:o1", "lang", "zh_CN")
    assert await storage.get_record("follower:o1") == {"name": "Ann", "lang": "zh_CN"}
    await storage.delete_record_field("follower:o1", "name")
    await storage.delete_record_field("follower:o1", "never-set")
    assert await storage.get_record("follower:o1") == {"lang": "zh_CN"}
    await storage.delete_record("follower:o1")
    await storage.delete_record("never-set")
    assert await storage.get_record("follower:o1") == {}
    assert await storage.get_record("follower:o2") == {"name": "Bob"}


async def test_a_returned_record_is_a_copy(storage: Storage) -> None:
    await storage.set_record_field("r", "f", "v")
    record = await storage.get_record("r")
    record["f"] = "changed"
    record["extra"] = "x"
    assert await storage.get_record("r") == {"f": "v"}


async def test_ephemeral_keys_and_records_do_not_collide(storage: Storage) -> None:
    await storage.set("same-name", b"key", 60)
    await storage.set_record_field("same-name", "f", "record")
    assert await storage.get("same-name") == b"key"
    assert await storage.get_record("same-name") == {"f": "record"}


async def test_unicode_and_binary_values_round_trip(storage: Storage) -> None:
    await storage.set("关注者:ü", "你好 👋".encode(), 60)
    await storage.set("binary", b"\x00\xff\xfe\r\n", 60)
    assert await storage.get("关注者:ü") == "你好 👋".encode()
    assert await storage.get("binary") == b"\x00\xff\xfe\r\n"
    await storage.set_record_field("用户:o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "名字", "小明 🐼")
    assert await storage.get_record("用户:o6_bmjrPTlm6_2sgVt7hMZOPfL2M") == {"名字": "小明 🐼"}


async def test_ping_answers(storage: Storage) -> None:
    await storage.ping()


# The protocol's synchronous members: what each backend answers without a coroutine.

LOCAL = {"memory", "embedded"}  # nothing shared with other processes


TERMS = ClaimTerms(nonce_ttl=60.0, dedup_ttl=30.0, marker=b"R")


def push(n: int, digest: bytes = b"d1", *, nonce: bool = True) -> PushClaim:
    """The claim of push `n` from follower o`n`."""
    return PushClaim(f"nonce:n{n}" if nonce else None, digest, f"dedup:o{n}:{n}", f"follower:o{n}")


async def test_a_fresh_push_is_claimed_with_its_senders_record(storage: Storage) -> None:
    await storage.set_record_field("follower:o1", "pref:name", "小王")
    [claimed] = await storage.claim_pushes([push(1)], TERMS)
    assert claimed == PushClaimed(False, False, True, None, {"pref:name": "小王"})
    assert await storage.get("nonce:n1") == b"d1"
    assert await storage.get("dedup:o1:1") == b"R"


async def test_claims_run_in_order_so_a_batch_sees_its_own_replays_and_retries(
    storage: Storage,
) -> None:
    outcomes = await storage.claim_pushes(
        [push(1), push(1, b"other body"), push(1), push(2, nonce=False)], TERMS
    )
    first, replay, retry, unchecked = outcomes
    assert (first.claimed, first.nonce_seen) == (True, False)
    # the same nonce with another body: a replay, and nothing else was done for it
    assert replay.replayed and not replay.claimed
    # the same nonce and body (WeChat trying again): not claimed twice, the marker is found
    assert (retry.replayed, retry.nonce_seen, retry.claimed, retry.found) == (
        False,
        True,
        False,
        b"R",
    )
    assert (unchecked.claimed, unchecked.nonce_seen) == (True, False)
    assert await storage.get("nonce:n2") is None  # nonces off for that one: none stored


async def test_writes_sent_along_are_stored_before_the_claims(storage: Storage) -> None:
    [claimed] = await storage.claim_pushes([push(1)], TERMS, [("dedup:o1:1", b"Dhello")])
    # the message was answered already (the write went first): not claimed, its answer found
    assert (claimed.claimed, claimed.found) == (False, b"Dhello")
    assert await storage.claim_pushes([], TERMS, [("dedup:o9:9", b"Dbye")]) == []
    assert await storage.get("dedup:o9:9") == b"Dbye"


def _backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.node.callspec.params["storage"]
    return backend


async def test_a_store_that_answers_is_not_degraded(storage: Storage) -> None:
    await storage.ping()
    assert storage.degraded is False


async def test_redis_itself_is_never_degraded_it_raises() -> None:
    store = RedisStorage(DEAD_REDIS_URL, "ns", timeout=0.5)
    with pytest.raises(StorageUnavailable):
        await store.ping()
    assert store.degraded is False
    await store.close()


async def test_a_purely_local_store_gives_its_table_a_shared_one_none(
    storage: Storage, request: pytest.FixtureRequest
) -> None:
    table = storage.local_table
    if _backend(request) not in LOCAL:
        assert table is None
        return
    assert table is not None
    # one table: what the coroutines store the table answers, and the other way round
    await storage.set("k", b"v", 60)
    assert table.get_now("k") == b"v"
    assert not table.add_now("k", b"other", 60)
    assert table.add_now("fresh", b"x", 60)
    assert await storage.get("fresh") == b"x"
    assert not await storage.add("fresh", b"y", 60)
    await storage.delete("k")
    assert table.get_now("k") is None


async def test_cached_record_answers_only_from_this_process(
    storage: Storage, request: pytest.FixtureRequest
) -> None:
    backend = _backend(request)
    await storage.set_record_field("rec", "f", "v")
    cached = storage.cached_record("rec")
    if backend not in LOCAL:
        assert cached is None  # Redis holds the one copy every instance shares
        assert storage.cached_record("unread") is None
        return
    assert cached == {"f": "v"}  # writes keep the local copy current
    await storage.delete_record("rec")
    assert storage.cached_record("rec") == {}  # known to be empty
    unread = storage.cached_record("unread")
    if backend == "memory":
        assert unread == {}  # every record is in memory
    else:
        assert unread is None  # in the SQLite file, not read yet
        assert await storage.get_record("unread") == {}
        assert storage.cached_record("unread") == {}


# MemoryStorage.


async def test_memory_is_bounded_and_keeps_the_newest() -> None:
    store = MemoryStorage(max_entries=100)
    for i in range(1000):
        await store.set(f"k{i}", b"v", 60)
    assert len(store) == 100
    assert await store.get("k999") == b"v"
    assert await store.get("k900") == b"v"
    assert await store.get("k899") is None
    assert await store.get("k0") is None


async def test_memory_evicts_the_least_recently_used() -> None:
    store = MemoryStorage(max_entries=3)
    for key in ("a", "b", "c"):
        await store.set(key, key.encode(), 60)
    assert await store.get("a") == b"a"  # now "b" is the least recently used
    await store.set("d", b"d", 60)
    assert await store.get("b") is None
    assert [await store.get(k) for k in ("a", "c", "d")] == [b"a", b"c", b"d"]


async def test_memory_evicts_an_expired_entry_before_a_live_one() -> None:
    clock = FakeClock()
    store = MemoryStorage(max_entries=3, clock=clock)
    await store.set("a", b"a", 100)
    await store.set("b", b"b", 1)
    await store.set("c", b"c", 100)
    clock.advance(2)
    await store.set("d", b"d", 100)
    assert len(store) == 3
    assert await store.get("a") == b"a"
    assert await store.get("b") is None


async def test_memory_looks_for_expired_entries_again_a_second_after_finding_none() -> None:
    clock = FakeClock()
    store = MemoryStorage(max_entries=2, clock=clock)
    await store.set("a", b"a", 100)
    await store.set("b", b"b", 1.5)
    await store.set("c", b"c", 100)  # nothing expired: "a", the least recently used, goes
    assert await store.get("a") is None
    clock.advance(2)  # "b" has expired; the last scan found nothing over a second ago
    await store.set("d", b"d", 100)
    assert [await store.get(k) for k in ("b", "c", "d")] == [None, b"c", b"d"]


async def test_memory_expiry_follows_the_clock() -> None:
    clock = FakeClock()
    store = MemoryStorage(clock=clock)
    await store.set("k", b"v", 10)
    clock.advance(9.999)
    assert await store.get("k") == b"v"
    clock.advance(0.001)
    assert await store.get("k") is None
    assert len(store) == 0


async def test_memory_add_replaces_an_expired_key_and_unlock_needs_a_live_one() -> None:
    clock = FakeClock()
    store = MemoryStorage(clock=clock)
    assert await store.add("lock", b"t1", 5)
    clock.advance(5)
    assert await store.delete_if_equals("lock", b"t1") is False
    assert await store.add("lock", b"t2", 5) is True
    assert await store.get("lock") == b"t2"


async def test_memory_records_are_bounded() -> None:
    store = MemoryStorage(max_entries=2)
    for name in ("r1", "r2", "r3"):
        await store.set_record_field(name, "f", name)
    assert await store.get_record("r1") == {}
    assert await store.get_record("r2") == {"f": "r2"}
    assert await store.get_record("r3") == {"f": "r3"}


def test_memory_rejects_a_zero_size() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStorage(max_entries=0)


# SQLiteRecords and EmbeddedStorage.


async def test_sqlite_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    records = SQLiteRecords(path)
    await records.set_record_field("follower:o1", "name", "小明")
    await records.set_record_field("follower:o1", "lang", "zh_CN")
    await records.set_record_field("follower:o2", "name", "Bob")
    await records.delete_record("follower:o2")
    await records.close()

    reopened = SQLiteRecords(path)
    try:
        assert await reopened.get_record("follower:o1") == {"name": "小明", "lang": "zh_CN"}
        assert await reopened.get_record("follower:o2") == {}
    finally:
        await reopened.close()


async def test_sqlite_file_uses_wal_and_the_records_table(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    records = SQLiteRecords(path)
    await records.set_record_field("n", "f", "v")
    await records.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT name, field, value FROM records").fetchall() == [
            ("n", "f", "v")
        ]
    conn.close()


async def test_sqlite_reads_come_from_a_bounded_cache(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    records = SQLiteRecords(path, cache_size=2)
    try:
        await records.set_record_field("r1", "f", "old")
        assert await records.get_record("r1") == {"f": "old"}
        # Changed behind the store's back: the cached copy is still served...
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE records SET value = 'new' WHERE name = 'r1'")
        conn.close()
        assert await records.get_record("r1") == {"f": "old"}
        # ...until two other records push it out of the two-entry cache.
        assert await records.get_record("r2") == {}
        assert await records.get_record("r3") == {}
        assert await records.get_record("r1") == {"f": "new"}
    finally:
        await records.close()


async def test_sqlite_writes_keep_the_cache_current(tmp_path: Path) -> None:
    records = SQLiteRecords(tmp_path / "records.sqlite3")
    try:
        assert await records.get_record("r") == {}
        await records.set_record_field("r", "a", "1")
        assert await records.get_record("r") == {"a": "1"}
        await records.set_record_field("r", "b", "2")
        await records.delete_record_field("r", "a")
        assert await records.get_record("r") == {"b": "2"}
        await records.delete_record("r")
        assert await records.get_record("r") == {}
    finally:
        await records.close()


async def test_sqlite_concurrent_writes_all_land(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    records = SQLiteRecords(path)
    await asyncio.gather(*(records.set_record_field("r", f"f{i}", str(i)) for i in range(50)))
    assert await records.get_record("r") == {f"f{i}": str(i) for i in range(50)}
    await records.close()
    reopened = SQLiteRecords(path)
    assert len(await reopened.get_record("r")) == 50
    await reopened.close()


async def test_sqlite_errors_are_storage_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    records = SQLiteRecords(blocker / "records.sqlite3")
    with pytest.raises(StorageUnavailable, match="sqlite"):
        await records.ping()
    with pytest.raises(StorageUnavailable):
        await records.set_record_field("r", "f", "v")
    await records.close()


async def test_sqlite_calls_after_close_are_storage_unavailable(tmp_path: Path) -> None:
    records = SQLiteRecords(tmp_path / "records.sqlite3")
    await records.set_record_field("r", "f", "v")
    await records.close()
    await records.close()  # idempotent
    with pytest.raises(StorageUnavailable, match="closed"):
        await records.get_record("r")


async def test_embedded_creates_its_directory_and_keeps_records(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    store = EmbeddedStorage(data_dir, max_entries=10)
    assert data_dir.is_dir()
    assert store.database_path == data_dir / "wechat-bot.sqlite3"
    await store.set("nonce", b"1", 60)
    await store.set_record_field("follower:o1", "name", "Ann")
    await store.close()

    reopened = EmbeddedStorage(data_dir)
    try:
        assert await reopened.get_record("follower:o1") == {"name": "Ann"}
        assert await reopened.get("nonce") is None  # ephemeral keys are per process
    finally:
        await reopened.close()


# RedisStorage.


async def test_redis_keys_live_under_the_namespace(
    redis_storage: RedisStorage, redis_url: str, redis_namespace: str
) -> None:
    await redis_storage.set("token", b"abc", 60)
    await redis_storage.set_record_field("follower:o1", "name", "Ann")
    raw = redis.asyncio.Redis.from_url(redis_url, socket_timeout=2.0)
    try:
        assert await raw.get(f"{redis_namespace}:token") == b"abc"
        assert 0 < await raw.pttl(f"{redis_namespace}:token") <= 60_000
        assert await raw.hgetall(f"{redis_namespace}:rec:follower:o1") == {b"name": b"Ann"}
        assert await raw.get("token") is None
    finally:
        await raw.aclose()


async def test_redis_namespaces_are_separate(redis_url: str, redis_storage: RedisStorage) -> None:
    other_namespace = f"wechat-bot-test:{uuid.uuid4().hex}"
    other = await RedisStorage.connect(redis_url, other_namespace, timeout=2.0)
    try:
        await redis_storage.set("k", b"mine", 60)
        assert await other.get("k") is None
        assert await other.add("k", b"theirs", 60) is True
        assert await redis_storage.get("k") == b"mine"
    finally:
        await other.close()
        await delete_namespace(redis_url, other_namespace)


async def test_redis_connect_refuses_an_unreachable_server_without_leaking_the_password() -> None:
    with pytest.raises(StorageUnavailable) as caught:
        await RedisStorage.connect("redis://:hunter2@127.0.0.1:1/0", "ns", timeout=0.5)
    message = str(caught.value)
    assert "hunter2" not in message
    assert "redis://:***@127.0.0.1:1/0" in message
    assert isinstance(caught.value.__cause__, Exception)


async def test_redis_connect_refuses_an_invalid_url() -> None:
    with pytest.raises(StorageUnavailable, match="invalid redis URL"):
        await RedisStorage.connect("http://user:hunter2@127.0.0.1/0", "ns")


async def test_redis_calls_on_a_dead_server_raise_storage_unavailable() -> None:
    store = RedisStorage(DEAD_REDIS_URL, "ns", timeout=0.5)
    try:
        with pytest.raises(StorageUnavailable, match=r"127\.0\.0\.1:1"):
            await store.get("k")
        with pytest.raises(StorageUnavailable):
            await store.add("k", b"v", 1)
        with pytest.raises(StorageUnavailable):
            await store.delete_if_equals("k", b"v")
        with pytest.raises(StorageUnavailable):
            await store.get_record("r")
        with pytest.raises(StorageUnavailable):
            await store.ping()
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://user:s3cret@redis:6380/1", "rediss://user:***@redis:6380/1"),
        ("redis://s3cret@redis/0", "redis://***@redis/0"),
        ("redis://redis/0?password=s3cret&db=2", "redis://redis/0?password=***&db=2"),
        ("unix:///run/redis.sock?password=s3cret", "unix:///run/redis.sock?password=***"),
        ("redis://[::1:6379", "<unparseable redis URL>"),
    ],
)
def test_masked_url_hides_passwords(url: str, expected: str) -> None:
    assert masked_url(url) == expected


# FallbackStorage.


def make_fallback(
    primary: Storage, clock: FakeClock, *, retry_interval: float = 1.0, log_interval: float = 60.0
) -> FallbackStorage:
    """A FallbackStorage driven by `clock`."""
    return FallbackStorage(
        primary,
        MemoryStorage(clock=clock),
        retry_interval=retry_interval,
        log_interval=log_interval,
        clock=clock,
    )


async def test_fallback_over_a_dead_redis_keeps_answering_ephemeral_calls() -> None:
    store = FallbackStorage(RedisStorage(DEAD_REDIS_URL, "ns", timeout=0.5), MemoryStorage())
    try:
        await store.set("k", b"v", 60)
        assert store.degraded
        assert await store.get("k") == b"v"
        assert await store.add("dedup", b"1", 60) is True
        assert await store.add("dedup", b"1", 60) is False
        assert await store.delete_if_equals("k", b"v") is True
        await store.delete("dedup")
        assert await store.get("dedup") is None
        await store.ping()  # never raises: the fallback serves
        assert await store.get_record("follower:o1") == {}
        with pytest.raises(StorageUnavailable, match="not stored"):
            await store.set_record_field("follower:o1", "name", "Ann")
        with pytest.raises(StorageUnavailable):
            await store.delete_record_field("follower:o1", "name")
        with pytest.raises(StorageUnavailable):
            await store.delete_record("follower:o1")
    finally:
        await store.close()


async def test_fallback_uses_the_primary_while_it_answers() -> None:
    clock = FakeClock()
    primary = SwitchablePrimary()
    store = make_fallback(primary, clock)
    await store.set("k", b"v", 60)
    assert await store.add("once", b"1", 60) is True
    await store.set_record_field("r", "f", "v")
    assert await primary.store.get("k") == b"v"
    assert await primary.store.get("once") == b"1"
    assert await primary.store.get_record("r") == {"f": "v"}
    # The primary is the one read: a value only it holds is returned.
    await primary.store.set("only-primary", b"p", 60)
    assert await store.get("only-primary") == b"p"
    assert not store.degraded


async def test_fallback_skips_a_down_primary_then_recovers_after_the_retry_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=FALLBACK_LOGGER)
    clock = FakeClock()
    primary = SwitchablePrimary()
    store = make_fallback(primary, clock, retry_interval=1.0)
    await store.set("before", b"1", 600)

    primary.up = False
    assert await store.get("before") == b"1"  # mirrored locally while the primary was up
    assert store.degraded
    calls_when_down = primary.calls
    await store.set("during", b"2", 600)
    clock.advance(0.5)
    assert await store.get("during") == b"2"
    assert primary.calls == calls_when_down  # skipped, not retried on every call

    primary.up = True
    clock.advance(0.4)
    await store.get("before")
    assert store.degraded  # 0.9 s: not yet due for a probe
    clock.advance(0.2)
    assert await store.get("before") == b"1"
    assert not store.degraded
    assert primary.calls == calls_when_down + 1
    await store.set("after", b"3", 600)
    assert await primary.store.get("after") == b"3"
    assert await primary.store.get("during") is None  # written only locally during the outage
    recovered = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(recovered) == 1
    assert "available again" in recovered[0].getMessage()


async def test_fallback_probes_once_per_retry_interval() -> None:
    clock = FakeClock()
    primary = SwitchablePrimary()
    store = make_fallback(primary, clock, retry_interval=1.0)
    primary.up = False
    await store.get("k")
    for _ in range(5):
        clock.advance(1.0)
        for _ in range(10):
            await store.get("k")
    assert primary.calls == 1 + 5


async def test_fallback_warns_at_most_once_per_log_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=FALLBACK_LOGGER)
    clock = FakeClock()
    primary = SwitchablePrimary()
    store = make_fallback(primary, clock, retry_interval=1.0, log_interval=60.0)

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    primary.up = False
    for _ in range(100):
        await store.get("k")
    assert len(warnings()) == 1
    assert "redis unavailable, serving from the local fallback" in warnings()[0]
    assert "primary switched off" in warnings()[0]
    for _ in range(59):
        clock.advance(1.0)
        await store.get("k")
    assert len(warnings()) == 1
    clock.advance(1.0)
    await store.get("k")
    assert len(warnings()) == 2

    # A new outage after a recovery is reported at once.
    primary.up = True
    clock.advance(1.0)
    await store.get("k")
    assert not store.degraded
    primary.up = False
    await store.get("k")
    assert len(warnings()) == 3


async def test_fallback_serves_the_last_known_record_while_down() -> None:
    clock = FakeClock()
    primary = SwitchablePrimary()
    store = make_fallback(primary, clock)
    await primary.store.set_record_field("follower:o1", "name", "Ann")
    assert await store.get_record("follower:o1") == {"name": "Ann"}
    await store.set_record_field("follower:o1", "lang", "en")

    primary.up = False
    assert await store.get_record("follower:o1") == {"name": "Ann", "lang": "en"}
    assert await store.get_record("follower:never-read") == {}
    with pytest.raises(StorageUnavailable):
        await store.set_record_field("follower:o1", "lang", "zh_CN")
    # The refused write changed nothing, here or there.
    assert await store.get_record("follower:o1") == {"name": "Ann", "lang": "en"}
    assert await primary.store.get_record("follower:o1") == {"name": "Ann", "lang": "en"}


async def test_fallback_releases_a_lock_taken_before_the_outage() -> None:
    clock = FakeClock()
    primary = SwitchablePrimary()
    store = make_fallback(primary, clock)
    assert await store.add("lock", b"me", 30) is True
    primary.up = False
    assert await store.add("lock", b"other", 30) is False  # still held locally
    assert await store.delete_if_equals("lock", b"me") is True
    assert await store.add("lock", b"other", 30) is True


async def test_fallback_ping_probes_the_primary_and_never_raises() -> None:
    clock = FakeClock()
    primary = SwitchablePrimary()
    store = make_fallback(primary, clock, retry_interval=100.0)
    primary.up = False
    await store.ping()
    assert store.degraded
    primary.up = True
    await store.ping()  # a ping probes now, whatever the retry interval
    assert not store.degraded


async def test_fallback_survives_a_real_redis_outage() -> None:
    server = RedisServer(require_redis_server(), free_port())
    server.start()
    store: FallbackStorage | None = None
    try:
        primary = await RedisStorage.connect(server.url, "wechat-bot-test:outage", timeout=0.5)
        store = FallbackStorage(primary, MemoryStorage(), retry_interval=0.05)
        await store.set("before", b"1", 60)
        await store.set_record_field("follower:o1", "name", "Ann")
        assert await store.get_record("follower:o1") == {"name": "Ann"}
        assert not store.degraded

        server.kill()
        assert await store.get("before") == b"1"
        assert store.degraded
        assert await store.add("during", b"2", 60) is True
        assert await store.add("during", b"3", 60) is False
        assert await store.get_record("follower:o1") == {"name": "Ann"}
        with pytest.raises(StorageUnavailable):
            await store.set_record_field("follower:o1", "lang", "en")

        server.start()  # same port, empty (no persistence)
        for _ in range(200):  # bounded: ~10 s at most
            await asyncio.sleep(0.05)
            await store.get("probe")
            if not store.degraded:
                break
        assert not store.degraded
        await store.set("after", b"4", 60)
        assert await primary.get("after") == b"4"
        assert await primary.get("during") is None
        await store.set_record_field("follower:o1", "lang", "en")
        assert await primary.get_record("follower:o1") == {"lang": "en"}
    finally:
        if store is not None:
            await store.close()
        server.kill()


async def test_redis_refuses_at_connect_a_user_without_scripts_or_announcements() -> None:
    server = RedisServer(require_redis_server(), free_port())
    server.start()
    admin = redis.asyncio.Redis.from_url(server.url, socket_timeout=2.0)
    try:
        await admin.acl_setuser(
            "noscripts",
            enabled=True,
            passwords=["+pw1"],
            keys=["*"],
            channels=["*"],
            commands=["+@all", "-@scripting"],
        )
        await admin.acl_setuser(
            "nochannels",
            enabled=True,
            passwords=["+pw2"],
            keys=["*"],
            reset_channels=True,
            commands=["+@all"],
        )
        for user, password, missing in (("noscripts", "pw1", "EVALSHA"), ("nochannels", "pw2", "")):
            url = f"redis://{user}:{password}@127.0.0.1:{server.port}/0"
            with pytest.raises(StorageUnavailable) as refused:
                await RedisStorage.connect(url, "wechat-bot-test:acl", timeout=0.5)
            assert "refused what the bot needs" in str(refused.value)
            assert missing in str(refused.value)
            assert password not in str(refused.value)
    finally:
        await admin.aclose()
        server.kill()


async def test_announcements_lost_with_their_connection_drop_every_cached_copy() -> None:
    server = RedisServer(require_redis_server(), free_port())
    server.start()
    admin = redis.asyncio.Redis.from_url(server.url, socket_timeout=2.0)
    store = await RedisStorage.connect(server.url, "wechat-bot-test:stale", timeout=0.5)
    seen: list[str | None] = []
    try:
        store.listen(seen.append)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.02)
        assert seen == [None]  # subscribed: drop what may have been announced before
        await store.announce("profile:o1")
        await _until(lambda: "profile:o1" in seen)

        await admin.client_kill_filter(_type="pubsub")
        await admin.publish("wechat-bot-test:stale:stale", "profile:o_lost")  # nobody hears it
        await _until(lambda: seen.count(None) >= 2)  # the loss itself says: drop everything
        await _until(lambda: seen.count(None) >= 3)  # and again once subscribed again
        await store.announce("profile:o2")
        await _until(lambda: "profile:o2" in seen)
        assert "profile:o_lost" not in seen
    finally:
        await store.close()
        await admin.aclose()
        server.kill()


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.02)


# open_storage.


async def test_open_storage_without_redis_is_embedded(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = await open_storage(
        redis_url=None, namespace="wechat-bot:wx1", data_dir=data_dir, max_entries=5, timeout=0.5
    )
    try:
        assert isinstance(store, EmbeddedStorage)
        await store.set_record_field("r", "f", "v")
        assert (data_dir / "wechat-bot.sqlite3").is_file()
    finally:
        await store.close()


async def test_open_storage_with_redis_falls_back_locally(
    tmp_path: Path, redis_url: str, redis_namespace: str
) -> None:
    store = await open_storage(
        redis_url=redis_url,
        namespace=redis_namespace,
        data_dir=tmp_path,
        max_entries=5,
        timeout=2.0,
    )
    try:
        assert isinstance(store, FallbackStorage)
        await store.set("k", b"v", 60)
        assert await store.get("k") == b"v"
        assert not store.degraded
    finally:
        await store.close()
        await delete_namespace(redis_url, redis_namespace)
    assert not any(tmp_path.iterdir())  # no SQLite file when Redis holds the records


async def test_open_storage_refuses_an_unreachable_redis(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable, match="cannot reach redis"):
        await open_storage(
            redis_url="redis://:hunter2@127.0.0.1:1/0",
            namespace="wechat-bot:wx1",
            data_dir=tmp_path,
            max_entries=5,
            timeout=0.5,
        )
