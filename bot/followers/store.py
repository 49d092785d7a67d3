"""What the bot remembers about each follower: preferences and handlers' own state.

Everything lives in one durable record per follower (`follower:<openid>`), so forgetting a
follower when they unfollow is a single delete, on either storage backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.storage.base import Storage

_NAME = "pref:name"
_WECHAT_NAME = "pref:wechat_name"  # the nickname the follower shared through web authorization
_LANGUAGE = "pref:language"
_STATE = "state:"


@dataclass(frozen=True, slots=True)
class Preferences:
    """What the follower told the bot about themselves."""

    name: str | None = None
    language: str | None = None
    wechat_name: str | None = None
    """The WeChat nickname the follower shared through web authorization (see `bot.webauth`)."""


def _preferences(record: Mapping[str, str]) -> Preferences:
    return Preferences(
        record.get(_NAME) or None, record.get(_LANGUAGE) or None, record.get(_WECHAT_NAME) or None
    )


def _record(openid: str) -> str:
    return f"follower:{openid}"


class FollowerStore:
    """Reads and writes followers' durable records."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._cached = storage.cached_record  # bound once: it is called on every greeting

    @staticmethod
    def record_name(openid: str) -> str:
        """The name of the follower's durable record in the store."""
        return _record(openid)

    @staticmethod
    def preferences_in(record: Mapping[str, str]) -> Preferences:
        """The preferences a follower's record holds (a record read with others at once)."""
        return _preferences(record)

    def cached_preferences(self, openid: str) -> Preferences | None:
        """The preferences when the store holds them in memory now, else None (then await
        `preferences`)."""
        record = self._cached(_record(openid))
        if record is None:
            return None
        return _preferences(record)

    async def preferences(self, openid: str) -> Preferences:
        """The stored name and language (None where unset)."""
        cached = self.cached_preferences(openid)
        if cached is not None:
            return cached
        record = await self._storage.get_record(_record(openid))
        return _preferences(record)

    async def set_name(self, openid: str, name: str) -> None:
        """Remember the name the follower wants to be called (raises StorageUnavailable)."""
        await self._storage.set_record_field(_record(openid), _NAME, name)

    async def set_language(self, openid: str, language: str) -> None:
        """Remember the follower's chosen language (raises StorageUnavailable)."""
        await self._storage.set_record_field(_record(openid), _LANGUAGE, language)

    async def set_wechat_name(self, openid: str, nickname: str) -> None:
        """Remember the nickname the follower shared by web authorization (raises
        StorageUnavailable)."""
        await self._storage.set_record_field(_record(openid), _WECHAT_NAME, nickname)

    async def forget_names(self, openid: str) -> None:
        """Delete both names: the one the follower typed and the authorized nickname."""
        await self._storage.delete_record_field(_record(openid), _NAME)
        await self._storage.delete_record_field(_record(openid), _WECHAT_NAME)

    async def forget(self, openid: str) -> None:
        """Delete everything stored about the follower."""
        await self._storage.delete_record(_record(openid))

    def state(self, openid: str) -> FollowerState:
        """Handlers' own key-value state for this follower."""
        return FollowerState(self._storage, openid)


class FollowerState:
    """A small per-follower key-value store for handlers; works the same on every backend."""

    def __init__(self, storage: Storage, openid: str) -> None:
        self._storage = storage
        self._record = _record(openid)

    async def get(self, key: str) -> str | None:
        """The value stored under `key`, or None."""
        record = await self._storage.get_record(self._record)
        return record.get(_STATE + key)

    async def set(self, key: str, value: str) -> None:
        """Store `value` under `key` (raises StorageUnavailable when it cannot be stored)."""
        await self._storage.set_record_field(self._record, _STATE + key, value)

    async def delete(self, key: str) -> None:
        """Remove `key`."""
        await self._storage.delete_record_field(self._record, _STATE + key)

    async def items(self) -> dict[str, str]:
        """Every key and value of this follower's state."""
        record = await self._storage.get_record(self._record)
        return {k[len(_STATE) :]: v for k, v in record.items() if k.startswith(_STATE)}
