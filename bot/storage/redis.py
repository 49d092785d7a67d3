"""The shared store: ephemeral keys and record hashes in Redis, under one namespace."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bot.storage.base import REPLAYED, ClaimTerms, PushClaim, PushClaimed, StorageUnavailable

log = logging.getLogger(__name__)

# Everything a failed Redis call can raise: RedisError covers its Connection/TimeoutError,
# OSError covers socket errors and the builtin TimeoutError.
_ERRORS = (RedisError, OSError)

# Compare-and-delete in one step, so a lock is only released by the holder of its token.
_DELETE_IF_EQUALS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Writes, then every push's claims, in one round trip (see bot.storage.base.PushClaim), in
# order, so a nonce or a message seen twice in one batch is seen as such. ARGV[1..4]: nonce TTL,
# dedup TTL (ms; the writes' TTL too), the dedup marker, the number of claims n. KEYS: nonce,
# dedup key and record per claim, then the keys written; ARGV[4 + i]: claim i's digest ("": no
# nonce check), then the values written. Answers per claim: {2} for a replay, else
# {nonce seen 0/1, claimed 0/1, the dedup key's value when not claimed, the record's fields}.
_CLAIM_PUSHES = """
local nonce_ttl, dedup_ttl, marker = ARGV[1], ARGV[2], ARGV[3]
local n = tonumber(ARGV[4])
for j = 3 * n + 1, #KEYS do
    redis.call('SET', KEYS[j], ARGV[4 + j - 2 * n], 'PX', dedup_ttl)
end
local out = {}
for i = 1, n do
    local nonce, dedup, record = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
    local digest = ARGV[4 + i]
    local seen = 0
    if digest ~= "" and not redis.call('SET', nonce, digest, 'PX', nonce_ttl, 'NX') then
        local stored = redis.call('GET', nonce)
        if stored and stored ~= digest then
            seen = 2
        else
            seen = 1
        end
    end
    if seen == 2 then
        out[i] = {2}
    else
        local claimed = 1
        local found = ""
        if not redis.call('SET', dedup, marker, 'PX', dedup_ttl, 'NX') then
            claimed = 0
            found = redis.call('GET', dedup) or ""
        end
        out[i] = {seen, claimed, found, redis.call('HGETALL', record)}
    end
end
return out
"""

# Several keys with one TTL (ARGV[1], ms) in one round trip: KEYS[i] gets ARGV[i + 1].
_SET_MANY = """
for i = 1, #KEYS do
    redis.call('SET', KEYS[i], ARGV[i + 1], 'PX', ARGV[1])
end
return #KEYS
"""

# Announcements (`listen`): how long one wait for a message lasts, how long the connection may
# stay quiet before a PING checks it, and the backoff between attempts to subscribe again.
_LISTEN_POLL = 1.0
_LISTEN_PING = 30.0
_LISTEN_RETRY_FIRST = 0.1
_LISTEN_RETRY_MAX = 2.0

# A password given as a query parameter (redis://host/0?password=...).
_QUERY_PASSWORD = re.compile(r"((?:^|&)password=)[^&]*")


def masked_url(url: str) -> str:
    """`url` with any password replaced by `***`, fit for logs and error messages."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            name, colon, _ = userinfo.partition(":")
            # Without a colon the lone user part may well be a password written in its place.
            netloc = f"{name}:***@{host}" if colon else f"***@{host}"
        masked = f"{parts.scheme}://{netloc}{parts.path}"
        if parts.query:
            masked += "?" + _QUERY_PASSWORD.sub(r"\1***", parts.query)
        return masked
    except ValueError:
        # Unparseable: show nothing of it rather than risk showing a secret.
        return "<unparseable redis URL>"


class RedisStorage:
    """Ephemeral keys as `{namespace}:{key}`, records as hashes `{namespace}:rec:{name}`.

    Connections come from a bounded pool: a caller waits at most `timeout` for one,
    and every connect and socket read/write is bounded by `timeout` too, with one
    immediate retry on a broken connection. Any failure raises StorageUnavailable.
    Keep ephemeral key names from starting with `rec:`, which is the records' prefix.
    `observe` is told the name of every round trip (metrics).
    """

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        timeout: float = 0.5,
        max_connections: int = 50,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        """Configure the pool; nothing connects until the first call (see `connect`)."""
        self._url = masked_url(url)
        self._prefix = f"{namespace}:"
        self._record_prefix = f"{namespace}:rec:"
        pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One retry, at once: enough to replace a connection a Redis restart closed.
            retry=Retry(NoBackoff(), 1),
            protocol=2,
        )
        self._client: Redis = Redis.from_pool(pool)
        self._delete_if_equals = self._client.register_script(_DELETE_IF_EQUALS)
        self._claim_pushes = self._client.register_script(_CLAIM_PUSHES)
        self._set_many = self._client.register_script(_SET_MANY)
        self._observe = observe
        self._channel = f"{namespace}:stale"
        self._listeners: list[asyncio.Task[None]] = []
        # Announcements arrive on a connection of their own that is never silently replaced:
        # the client's retry would reconnect and subscribe again by itself, and what was
        # announced in between would be lost unseen (`listen` must know, to drop everything).
        self._subscriber: Redis = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            protocol=2,
        )

    @classmethod
    async def connect(
        cls,
        url: str,
        namespace: str,
        *,
        timeout: float = 0.5,  # noqa: ASYNC109 - the per-call timeout of the store it builds
        max_connections: int = 50,
        observe: Callable[[str], None] | None = None,
    ) -> RedisStorage:
        """A store whose server answered a PING; StorageUnavailable (URL masked) if not."""
        try:
            storage = cls(
                url, namespace, timeout=timeout, max_connections=max_connections, observe=observe
            )
        except ValueError as exc:
            raise StorageUnavailable(f"invalid redis URL {masked_url(url)}: {exc}") from exc
        try:
            await storage.ping()
        except StorageUnavailable as exc:
            await storage.close()
            raise StorageUnavailable(
                f"cannot reach redis at {masked_url(url)} within {timeout} s: {exc.__cause__}"
            ) from exc.__cause__
        try:
            await storage._check_rights()
        except StorageUnavailable:
            await storage.close()
            raise
        return storage

    async def _check_rights(self) -> None:
        """StorageUnavailable unless this user may run the scripts and announce (an ACL user
        without them would pass a PING, then lose every claim and announcement at run time)."""
        try:
            for script in (self._claim_pushes, self._set_many, self._delete_if_equals):
                await self._client.script_load(script.script)
            await self._client.publish(self._channel, "")
        except _ERRORS as exc:
            raise StorageUnavailable(
                f"redis at {self._url} refused what the bot needs (scripts: EVALSHA, SCRIPT "
                f"LOAD; announcements: PUBLISH and SUBSCRIBE on {self._channel}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    @property
    def degraded(self) -> bool:
        """Never: a call that cannot reach Redis raises StorageUnavailable instead."""
        return False

    @property
    def local_table(self) -> None:
        """None: the keys are shared with every instance."""
        return None

    def cached_record(self, name: str) -> Mapping[str, str] | None:
        """None: records are read from Redis, the one copy every instance shares."""
        return None

    async def get(self, key: str) -> bytes | None:
        """The value of an ephemeral key, or None when absent or expired."""
        self._count("get")
        try:
            value = await self._client.get(self._prefix + key)
        except _ERRORS as exc:
            raise self._unavailable("GET", exc) from exc
        # The client is built without decode_responses, so this is bytes; str only for typing.
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store an ephemeral key for `ttl` seconds, replacing any value."""
        self._count("set")
        try:
            await self._client.set(self._prefix + key, value, px=_milliseconds(ttl))
        except _ERRORS as exc:
            raise self._unavailable("SET", exc) from exc

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store the key only if absent; True when this call stored it."""
        self._count("add")
        try:
            stored = await self._client.set(
                self._prefix + key, value, px=_milliseconds(ttl), nx=True
            )
        except _ERRORS as exc:
            raise self._unavailable("SET NX", exc) from exc
        return bool(stored)

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        """Store several ephemeral keys for `ttl` seconds each, in one round trip (a script)."""
        if not items:
            return
        self._count("set_many")
        prefix = self._prefix
        keys = [prefix + key for key, _ in items]
        args: list[bytes | int] = [_milliseconds(ttl)]
        args.extend(value for _, value in items)
        try:
            await self._set_many(keys=keys, args=args)
        except _ERRORS as exc:
            raise self._unavailable("set-many", exc) from exc

    async def claim_pushes(
        self,
        claims: Sequence[PushClaim],
        terms: ClaimTerms,
        writes: Sequence[tuple[str, bytes]] = (),
    ) -> list[PushClaimed]:
        """Store `writes`, then carry out each claim in order (see `PushClaim`), in one round
        trip (a script)."""
        if not claims:
            await self.set_many(writes, terms.dedup_ttl)
            return []
        self._count("claim_pushes")
        prefix, record_prefix = self._prefix, self._record_prefix
        keys: list[str] = []
        digests: list[bytes] = []
        for nonce_key, digest, dedup_key, record in claims:
            dedup = prefix + dedup_key
            keys += (
                dedup if nonce_key is None else prefix + nonce_key,
                dedup,
                record_prefix + record,
            )
            digests.append(b"" if nonce_key is None else digest)
        keys.extend(prefix + key for key, _ in writes)
        args: list[bytes | int] = [
            _milliseconds(terms.nonce_ttl),
            _milliseconds(terms.dedup_ttl),
            terms.marker,
            len(claims),
        ]
        args += digests
        args.extend(value for _, value in writes)
        try:
            answers: Any = await self._claim_pushes(keys=keys, args=args)
        except _ERRORS as exc:
            raise self._unavailable("claim", exc) from exc
        try:
            return [_claimed(answer) for answer in answers]
        except (TypeError, ValueError, IndexError) as exc:
            raise StorageUnavailable(f"redis claim at {self._url}: unexpected answer") from exc

    async def delete(self, key: str) -> None:
        """Remove an ephemeral key (no error when absent)."""
        self._count("delete")
        try:
            await self._client.delete(self._prefix + key)
        except _ERRORS as exc:
            raise self._unavailable("DEL", exc) from exc

    async def delete_if_equals(self, key: str, value: bytes) -> bool:
        """Remove the key only while it still holds `value` (atomic, in a Lua script)."""
        self._count("delete_if_equals")
        try:
            deleted: Any = await self._delete_if_equals(keys=[self._prefix + key], args=[value])
        except _ERRORS as exc:
            raise self._unavailable("compare-and-delete", exc) from exc
        return bool(deleted)

    async def get_record(self, name: str) -> dict[str, str]:
        """All fields of a durable record ({} when there is none)."""
        self._count("get_record")
        try:
            raw = await self._client.hgetall(self._record_prefix + name)
        except _ERRORS as exc:
            raise self._unavailable("HGETALL", exc) from exc
        return {_text(field): _text(value) for field, value in raw.items()}

    async def set_record_field(self, name: str, field: str, value: str) -> None:
        """Set one field of a durable record."""
        self._count("set_record_field")
        try:
            await self._client.hset(self._record_prefix + name, field, value)
        except _ERRORS as exc:
            raise self._unavailable("HSET", exc) from exc

    async def delete_record_field(self, name: str, field: str) -> None:
        """Remove one field of a durable record."""
        self._count("delete_record_field")
        try:
            await self._client.hdel(self._record_prefix + name, field)
        except _ERRORS as exc:
            raise self._unavailable("HDEL", exc) from exc

    async def delete_record(self, name: str) -> None:
        """Remove a whole durable record."""
        self._count("delete_record")
        try:
            await self._client.delete(self._record_prefix + name)
        except _ERRORS as exc:
            raise self._unavailable("DEL", exc) from exc

    async def announce(self, key: str) -> None:
        """Tell every instance that copies of `key` they cache are stale (PUBLISH)."""
        self._count("announce")
        try:
            await self._client.publish(self._channel, key)
        except _ERRORS as exc:
            raise self._unavailable("PUBLISH", exc) from exc

    def listen(self, on_stale: Callable[[str | None], None]) -> None:
        """`on_stale(key)` for every announced key (SUBSCRIBE, in a task of its own until
        `close`); `on_stale(None)` on every (re)subscription, since announcements made while
        not subscribed are lost. A lost connection is replaced by itself, with a backoff."""
        task = asyncio.get_running_loop().create_task(self._listen(on_stale))
        self._listeners.append(task)

    async def _listen(self, on_stale: Callable[[str | None], None]) -> None:
        delay = _LISTEN_RETRY_FIRST
        lost = False  # logged once per outage
        loop = asyncio.get_running_loop()
        while True:
            pubsub = self._subscriber.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                # the confirmation, not the request, says announcements reach us from now on
                confirm_by: float | None = loop.time() + _LISTEN_POLL * 2
                pong_by: float | None = None
                quiet_since = loop.time()
                while True:
                    message = await pubsub.get_message(timeout=_LISTEN_POLL)
                    kind = message.get("type") if message else None
                    now = loop.time()
                    if message is not None:
                        quiet_since = now
                    if kind == "subscribe":
                        confirm_by = None
                        on_stale(None)  # what was announced while not subscribed is lost
                        delay = _LISTEN_RETRY_FIRST
                        if lost:
                            log.info("redis announcements at %s received again", self._url)
                            lost = False
                    elif kind == "message" and message is not None:
                        on_stale(_text(message["data"]))
                    elif kind == "pong":
                        pong_by = None
                    if confirm_by is not None and now > confirm_by:
                        raise TimeoutError("SUBSCRIBE not confirmed")
                    if pong_by is not None and now > pong_by:
                        raise TimeoutError("PING not answered")  # a connection dead silently
                    if pong_by is None and now - quiet_since >= _LISTEN_PING:
                        await pubsub.ping()
                        pong_by = now + _LISTEN_POLL * 2
                        quiet_since = now
            except _ERRORS as exc:
                if not lost:
                    log.warning(
                        "redis announcements at %s lost (%s: %s); subscribing again",
                        self._url,
                        type(exc).__name__,
                        exc,
                    )
                    lost = True
                    on_stale(None)  # announced since the last message: perhaps lost
            finally:
                with contextlib.suppress(*_ERRORS):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(2 * delay, _LISTEN_RETRY_MAX)

    async def ping(self) -> None:
        """Raise StorageUnavailable when Redis does not answer a PING."""
        self._count("ping")
        try:
            await self._client.ping()
        except _ERRORS as exc:
            raise self._unavailable("PING", exc) from exc

    async def close(self) -> None:
        """Stop listening; close the client and every pooled connection."""
        for task in self._listeners:
            task.cancel()
        await asyncio.gather(*self._listeners, return_exceptions=True)
        self._listeners.clear()
        await self._subscriber.aclose()
        await self._client.aclose()

    def _count(self, op: str) -> None:
        if self._observe is not None:
            self._observe(op)

    def _unavailable(self, command: str, exc: BaseException) -> StorageUnavailable:
        return StorageUnavailable(
            f"redis {command} at {self._url} failed: {type(exc).__name__}: {exc}"
        )


def _claimed(answer: list[Any]) -> PushClaimed:
    """One push's answer of the claim script."""
    if answer[0] == 2:
        return REPLAYED
    seen, claimed, found, flat = answer
    record = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)} if flat else {}
    return PushClaimed(seen == 1, False, claimed == 1, None if claimed else bytes(found), record)


def _text(raw: bytes | str) -> str:
    # "replace": bytes another writer left behind must not crash a read.
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def _milliseconds(ttl: float) -> int:
    # PX must be a positive integer; round up so a short TTL never becomes "no expiry".
    return max(1, math.ceil(ttl * 1000))
