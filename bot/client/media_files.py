"""Local files as media ids: `ImageReply(file=...)` and its kin, uploaded once and reused.

A file is uploaded on its first use as temporary media; the `media_id` is kept in the store
(shared through Redis when there is one) until an hour before the platform's 3-day expiry, and
uploaded again after. Files are keyed by their content's SHA-256, so an edited file is a new
upload. Concurrent first uses upload once: one task per file in a process, and across
processes a lock key elects the uploader while the others wait for its id.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from bot.client.media import TEMPORARY_LIFETIME, MediaAPI
from bot.storage.base import Storage
from bot.wechat.media_formats import MediaFile, check_media_file
from bot.wechat.replies import ImageReply, MusicReply, Reply, VideoReply, VoiceReply

log = logging.getLogger(__name__)
T = TypeVar("T")

EXPIRY_MARGIN = 3600.0  # stop using an id this long before the platform forgets it
_POLL_INTERVAL = 0.1  # how often a process without the lock re-reads the shared id
_KINDS = {ImageReply: "image", VoiceReply: "voice", VideoReply: "video"}


@dataclasses.dataclass(frozen=True, slots=True)
class _Held:
    media_id: str
    use_until: float  # wall clock


class MediaFileCache:
    """Media ids of local files, uploaded on first use (see the module docstring)."""

    def __init__(
        self,
        media: MediaAPI,
        storage: Storage,
        *,
        app_id: str,
        clock: Callable[[], float] = time.time,
        size: int = 256,
        lock_ttl: float = 60.0,
        lock_wait: float | None = None,
    ) -> None:
        """Share ids through `storage`; `size` bounds the ids and digests kept in memory."""
        self._media = media
        self._storage = storage
        self._prefix = f"media:{app_id}"
        self._clock = clock
        self._size = max(1, size)
        self._lock_ttl = lock_ttl
        self._lock_wait = lock_ttl if lock_wait is None else lock_wait
        self._held: collections.OrderedDict[str, _Held] = collections.OrderedDict()
        self._digests: collections.OrderedDict[tuple[str, int, int], str] = (
            collections.OrderedDict()
        )
        self._uploading: dict[str, asyncio.Task[str]] = {}
        self.uploads = 0  # uploads this process made

    async def resolve(self, reply: Reply) -> Reply:
        """`reply` with the media ids of its files filled in (uploading what needs it)."""
        if isinstance(reply, ImageReply | VoiceReply | VideoReply):
            if reply.file is None or reply.media_id:
                return reply
            kind = _KINDS[type(reply)]
            media_id = await self.media_id(check_media_file(reply.file, kind))
            return dataclasses.replace(reply, media_id=media_id)
        if isinstance(reply, MusicReply) and reply.thumb_file and not reply.thumb_media_id:
            media_id = await self.media_id(check_media_file(reply.thumb_file, "thumb"))
            return dataclasses.replace(reply, thumb_media_id=media_id)
        return reply

    async def media_id(self, file: MediaFile) -> str:
        """The media id of `file`, uploading it when no valid one is known."""
        key = f"{self._prefix}:{file.kind}:{await self._digest(file.path)}"
        held = self._held.get(key)
        if held is not None and self._clock() < held.use_until:
            self._held.move_to_end(key)
            return held.media_id
        task = self._uploading.get(key)
        if task is None:
            task = asyncio.create_task(self._obtain(key, file))
            self._uploading[key] = task
            task.add_done_callback(lambda done: self._uploaded(key, done))
        # shield: one cancelled caller must not cancel the upload the others wait for
        return await asyncio.shield(task)

    def _uploaded(self, key: str, task: asyncio.Task[str]) -> None:
        if self._uploading.get(key) is task:
            del self._uploading[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when every waiter left

    async def _digest(self, path: Path) -> str:
        stat = await asyncio.to_thread(path.stat)
        ident = (str(path), stat.st_mtime_ns, stat.st_size)
        digest = self._digests.get(ident)
        if digest is None:
            content = await asyncio.to_thread(path.read_bytes)
            digest = hashlib.sha256(content).hexdigest()
            self._digests[ident] = digest
            if len(self._digests) > self._size:
                self._digests.popitem(last=False)
        return digest

    async def _obtain(self, key: str, file: MediaFile) -> str:
        """The shared id, or an upload under the cross-process lock."""
        if (held := await self._shared(key)) is not None:
            return self._keep(key, held)
        give_up = time.monotonic() + self._lock_wait
        lock_key = f"{key}:lock"
        while True:
            lock_id = secrets.token_hex(8).encode()
            if await self._guarded(self._storage.add(lock_key, lock_id, self._lock_ttl), True):
                try:
                    if (held := await self._shared(key)) is not None:  # stored just now
                        return self._keep(key, held)
                    return self._keep(key, await self._upload(key, file))
                finally:
                    await self._guarded(self._storage.delete_if_equals(lock_key, lock_id), None)
            if time.monotonic() >= give_up:
                log.warning("%s: no id from the instance uploading it; uploading here", file.path)
                return self._keep(key, await self._upload(key, file))
            await asyncio.sleep(_POLL_INTERVAL)
            if (held := await self._shared(key)) is not None:
                return self._keep(key, held)

    async def _upload(self, key: str, file: MediaFile) -> _Held:
        uploaded = await self._media.upload(file.kind, file.path)
        self.uploads += 1
        created = float(uploaded.created_at) if uploaded.created_at else self._clock()
        held = _Held(uploaded.media_id, created + TEMPORARY_LIFETIME - EXPIRY_MARGIN)
        ttl = held.use_until - self._clock()
        if ttl > 0:
            value = json.dumps({"media_id": held.media_id, "use_until": held.use_until})
            await self._guarded(self._storage.set(key, value.encode(), ttl), None)
        log.info("uploaded %s as %s media", file.path.name, file.kind)
        return held

    def _keep(self, key: str, held: _Held) -> str:
        self._held[key] = held
        self._held.move_to_end(key)
        if len(self._held) > self._size:
            self._held.popitem(last=False)
        return held.media_id

    async def _shared(self, key: str) -> _Held | None:
        raw = await self._guarded(self._storage.get(key), None)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            held = _Held(str(data["media_id"]), float(data["use_until"]))
        except (ValueError, KeyError, TypeError):  # a corrupt entry counts as absent
            return None
        return held if self._clock() < held.use_until else None

    async def _guarded(self, call: Awaitable[T], fallback: T) -> T:
        """Run a storage call; when the store fails, carry on alone with `fallback`."""
        try:
            return await call
        except Exception as exc:  # a store outage must not stop a reply's upload
            log.warning(
                "media-id storage unavailable (%s); going on without it", type(exc).__name__
            )
            return fallback
