"""Media (platform notes §8): temporary uploads (kept 3 days) and permanent material.

Files are checked before they are sent (type, size, format from the first bytes), so a file
the platform would refuse never costs a call; `LimitError` names the file and the limit.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.client.caller import APICaller, Download
from bot.client.errors import ERR_BAD_ANSWER, LimitError, WeChatAPIError
from bot.client.limits import check_range
from bot.wechat.media_formats import (
    CONTENT_TYPES,
    MediaFileError,
    MediaType,
    check_media,
    media_type,
)

TEMPORARY_LIFETIME = 3 * 24 * 3600.0  # seconds a temporary media_id is valid
MATERIAL_PAGE = 20  # batchget_material returns at most 20 items
MATERIAL_TYPES = ("image", "voice", "video", "news")
UPLOAD_ATTEMPT = 30.0  # seconds for one attempt at sending or fetching a file (10 MB)
UPLOAD_TIMEOUT = 100.0  # seconds for the whole call, retries included


@dataclass(frozen=True)
class UploadedMedia:
    """A temporary upload: its `media_id`, valid 3 days from `created_at`."""

    type: str
    media_id: str
    created_at: int


@dataclass(frozen=True)
class Material:
    """Permanent material: its `media_id`, and for an image the URL it is served at."""

    media_id: str
    url: str = ""


@dataclass(frozen=True)
class VideoMaterial:
    """A permanent video: what get_material answers for one (no bytes, a download URL)."""

    title: str
    description: str
    down_url: str


@dataclass(frozen=True)
class MaterialCount:
    """How much permanent material the account holds, per type."""

    image: int
    voice: int
    video: int
    news: int


@dataclass(frozen=True)
class MaterialItem:
    """One entry of a material listing."""

    media_id: str
    name: str
    update_time: int
    url: str


@dataclass(frozen=True)
class MaterialPage:
    """One page of `batchget_material`."""

    total_count: int
    items: tuple[MaterialItem, ...]


class MediaAPI:
    """media/upload and media/get; material add, get, delete, count and list."""

    def __init__(self, api: APICaller) -> None:
        """Calls go through `api`."""
        self._api = api

    async def upload(
        self, kind: str, file: str | os.PathLike[str], *, content: bytes | None = None
    ) -> UploadedMedia:
        """Upload a temporary `kind` (image, voice, video, thumb) medium: the file at `file`,
        or `content` under the name `file`."""
        name, data, ctype = _read(kind, file, content)
        body, multipart = _multipart({}, name, data, ctype)
        answer = await self._api.call(
            "POST",
            "/cgi-bin/media/upload",
            params={"type": kind},
            body=body,
            content_type=multipart,
            timeout=UPLOAD_TIMEOUT,
            attempt_timeout=UPLOAD_ATTEMPT,
        )
        media_id = answer.get("media_id") or answer.get("thumb_media_id")
        if not isinstance(media_id, str) or not media_id:
            raise WeChatAPIError(ERR_BAD_ANSWER, "no media_id in the answer", "media_upload")
        created = answer.get("created_at")
        return UploadedMedia(
            type=str(answer.get("type", kind)),
            media_id=media_id,
            created_at=created if isinstance(created, int) else int(time.time()),
        )

    async def get(self, media_id: str) -> Download:
        """A temporary medium's bytes (40007 once its 3 days are over)."""
        return await self._api.download(
            "GET",
            "/cgi-bin/media/get",
            params={"media_id": media_id},
            timeout=UPLOAD_TIMEOUT,
            attempt_timeout=UPLOAD_ATTEMPT,
        )

    async def add_material(
        self,
        kind: str,
        file: str | os.PathLike[str],
        *,
        content: bytes | None = None,
        title: str = "",
        introduction: str = "",
    ) -> Material:
        """Add permanent material (image, voice, video, thumb); a video needs a `title`."""
        fields: dict[str, str] = {}
        if kind == "video":
            if not title:
                raise LimitError("title", "a permanent video needs a title")
            fields["description"] = json.dumps(
                {"title": title, "introduction": introduction}, ensure_ascii=False
            )
        name, data, ctype = _read(kind, file, content)
        body, multipart = _multipart(fields, name, data, ctype)
        answer = await self._api.call(
            "POST",
            "/cgi-bin/material/add_material",
            params={"type": kind},
            body=body,
            content_type=multipart,
            timeout=UPLOAD_TIMEOUT,
            attempt_timeout=UPLOAD_ATTEMPT,
        )
        media_id = answer.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise WeChatAPIError(ERR_BAD_ANSWER, "no media_id in the answer", "material_add")
        return Material(media_id, str(answer.get("url", "")))

    async def get_material(self, media_id: str) -> Download | VideoMaterial:
        """Permanent material: the file, or for a video its title and download URL."""
        download = await self._api.download(
            "POST",
            "/cgi-bin/material/get_material",
            json_body={"media_id": media_id},
            timeout=UPLOAD_TIMEOUT,
            attempt_timeout=UPLOAD_ATTEMPT,
        )
        if download.content_type != "application/json":
            return download
        data = json.loads(download.content)
        return VideoMaterial(
            str(data.get("title", "")),
            str(data.get("description", "")),
            str(data.get("down_url", "")),
        )

    async def delete_material(self, media_id: str) -> None:
        """Delete permanent material."""
        await self._api.call(
            "POST", "/cgi-bin/material/del_material", json_body={"media_id": media_id}
        )

    async def material_count(self) -> MaterialCount:
        """How much permanent material there is, per type."""
        data = await self._api.call("GET", "/cgi-bin/material/get_materialcount")
        return MaterialCount(
            *(_count(data.get(f"{kind}_count")) for kind in ("image", "voice", "video", "news"))
        )

    async def list_materials(self, kind: str, offset: int = 0, count: int = 20) -> MaterialPage:
        """One page of permanent material of `kind` (image, voice, video, news)."""
        if kind not in MATERIAL_TYPES:
            raise LimitError("type", f"must be one of {', '.join(MATERIAL_TYPES)} (got {kind!r})")
        check_range("count", count, 1, MATERIAL_PAGE)
        check_range("offset", offset, 0, 10_000_000)
        data = await self._api.call(
            "POST",
            "/cgi-bin/material/batchget_material",
            json_body={"type": kind, "offset": offset, "count": count},
        )
        items = data.get("item")
        return MaterialPage(
            total_count=_count(data.get("total_count")),
            items=tuple(
                MaterialItem(
                    media_id=str(i.get("media_id", "")),
                    name=str(i.get("name", "")),
                    update_time=_count(i.get("update_time")),
                    url=str(i.get("url", "")),
                )
                for i in (items if isinstance(items, list) else [])
                if isinstance(i, Mapping)
            ),
        )


def _read(kind: str, file: str | os.PathLike[str], content: bytes | None) -> tuple[str, bytes, str]:
    """The file's name, bytes and Content-Type, checked against the limits of `kind`."""
    try:
        checked: MediaType = media_type(kind)
        if content is None:
            path = Path(file)
            with path.open("rb") as handle:
                head = handle.read(16)
            check_media(checked, str(file), head, path.stat().st_size)  # before reading it all
            content = path.read_bytes()
        fmt = check_media(checked, str(file), content[:16], len(content))
    except MediaFileError as exc:
        raise LimitError("media", str(exc)) from None
    except OSError as exc:
        raise LimitError("media", f"{file}: cannot read it ({exc.strerror})") from None
    return Path(file).name, content, CONTENT_TYPES[fmt]


def _multipart(
    fields: Mapping[str, str], filename: str, content: bytes, content_type: str
) -> tuple[bytes, str]:
    """A multipart/form-data body with `fields` and the file as `media` (built once, so a
    retry can send it again)."""
    boundary = "wechatbot" + secrets.token_hex(12)
    safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    parts.append(
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="media"; filename="{safe_name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
