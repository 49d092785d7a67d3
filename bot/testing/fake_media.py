"""The fake platform's media: temporary uploads (kept 3 days) and permanent material, with the
platform's type, size and format checks and errcodes (platform notes §8)."""

from __future__ import annotations

import collections
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from bot.testing.fake_http import Guard, error, json_body, json_response, ok
from bot.wechat.media_formats import CONTENT_TYPES, MEDIA_LIMITS, sniff_format

ENDPOINTS = (
    "media_upload",
    "media_get",
    "material_add_material",
    "material_get_material",
    "material_del_material",
    "material_get_materialcount",
    "material_batchget_material",
)
LIFETIME = 3 * 24 * 3600.0  # a temporary medium is kept 3 days
MAX_STORED_BYTES = 256 * 1024 * 1024  # what the fake keeps in memory (oldest dropped first)
_TOO_LARGE = {"image": 40009, "voice": 40010, "video": 40011, "thumb": 40012}
_LISTED = ("image", "voice", "video", "news")


@dataclass(frozen=True)
class FakeMedium:
    """An uploaded file as the fake keeps it."""

    media_id: str
    kind: str
    filename: str
    content: bytes
    created_at: float
    title: str = ""
    introduction: str = ""


class FakeMedia:
    """Temporary media and permanent material, by media_id."""

    def __init__(self, guard: Guard, clock: Callable[[], float]) -> None:
        """`clock` dates uploads (temporary media expire after 3 days)."""
        self._guard = guard
        self._clock = clock
        self.temporary: collections.OrderedDict[str, FakeMedium] = collections.OrderedDict()
        self.material: collections.OrderedDict[str, FakeMedium] = collections.OrderedDict()
        self.uploads: list[str] = []  # media_ids of temporary uploads, in order

    def routes(self) -> list[web.RouteDef]:
        """media/upload, media/get and the material endpoints."""
        return [
            web.post("/cgi-bin/media/upload", self._upload),
            web.get("/cgi-bin/media/get", self._get),
            web.post("/cgi-bin/material/add_material", self._add_material),
            web.post("/cgi-bin/material/get_material", self._get_material),
            web.post("/cgi-bin/material/del_material", self._del_material),
            web.get("/cgi-bin/material/get_materialcount", self._count),
            web.post("/cgi-bin/material/batchget_material", self._batchget),
        ]

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "media_upload")) is not None:
            return answer
        received = await _received(request)
        if isinstance(received, web.Response):
            return received
        kind, filename, content, _ = received
        medium = FakeMedium(_media_id(), kind, filename, content, self._clock())
        self._keep(self.temporary, medium)
        self.uploads.append(medium.media_id)
        key = "thumb_media_id" if kind == "thumb" else "media_id"
        return json_response(
            {"type": kind, key: medium.media_id, "created_at": int(medium.created_at)}
        )

    async def _get(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "media_get")) is not None:
            return answer
        medium = self.temporary.get(request.query.get("media_id", ""))
        if medium is None or self._clock() >= medium.created_at + LIFETIME:
            return error(40007)
        return _file(medium)

    async def _add_material(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "material_add_material")) is not None:
            return answer
        if request.query.get("type") == "news":
            return error(45103)  # articles are drafts now
        received = await _received(request)
        if isinstance(received, web.Response):
            return received
        kind, filename, content, form = received
        title = introduction = ""
        if kind == "video":
            try:
                description = json.loads(form.get("description", ""))
                title = str(description["title"])
                introduction = str(description.get("introduction", ""))
            except (ValueError, KeyError, TypeError, AttributeError):
                return error(47001, "a video needs a description with its title")
            if not title:
                return error(47001, "a video needs a description with its title")
        medium = FakeMedium(
            _media_id(), kind, filename, content, self._clock(), title, introduction
        )
        self._keep(self.material, medium)
        if kind == "image":
            return json_response(
                {"media_id": medium.media_id, "url": f"http://mmbiz.qpic.cn/{medium.media_id}"}
            )
        return json_response({"media_id": medium.media_id})

    async def _get_material(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "material_get_material")) is not None:
            return answer
        medium = self._material_of(await json_body(request))
        if medium is None:
            return error(40007)
        if medium.kind == "video":
            return json_response(
                {
                    "title": medium.title,
                    "description": medium.introduction,
                    "down_url": f"http://mmbiz.qpic.cn/video/{medium.media_id}",
                }
            )
        return _file(medium)

    async def _del_material(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "material_del_material")) is not None:
            return answer
        medium = self._material_of(await json_body(request))
        if medium is None:
            return error(40007)
        del self.material[medium.media_id]
        return ok()

    async def _count(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "material_get_materialcount")) is not None:
            return answer
        counts = collections.Counter(m.kind for m in self.material.values())
        return json_response({f"{kind}_count": counts[kind] for kind in _LISTED})

    async def _batchget(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "material_batchget_material")) is not None:
            return answer
        body = await json_body(request)
        if not isinstance(body, dict):
            return error(47001)
        kind, offset, count = body.get("type"), body.get("offset", 0), body.get("count")
        if kind not in _LISTED:
            return error(40004)
        if (
            not isinstance(offset, int)
            or offset < 0
            or not isinstance(count, int)
            or not 1 <= count <= 20
        ):
            return error(47001)
        of_kind = [m for m in self.material.values() if m.kind == kind]
        page = of_kind[offset : offset + count]
        return json_response(
            {
                "total_count": len(of_kind),
                "item_count": len(page),
                "item": [
                    {
                        "media_id": m.media_id,
                        "name": m.filename,
                        "update_time": int(m.created_at),
                        "url": f"http://mmbiz.qpic.cn/{m.media_id}" if kind == "image" else "",
                    }
                    for m in page
                ],
            }
        )

    def _material_of(self, body: object) -> FakeMedium | None:
        media_id = body.get("media_id") if isinstance(body, dict) else None
        return self.material.get(media_id) if isinstance(media_id, str) else None

    @staticmethod
    def _keep(table: collections.OrderedDict[str, FakeMedium], medium: FakeMedium) -> None:
        table[medium.media_id] = medium
        stored = sum(len(m.content) for m in table.values())
        while stored > MAX_STORED_BYTES and len(table) > 1:
            _, dropped = table.popitem(last=False)
            stored -= len(dropped.content)


async def _received(request: web.Request) -> tuple[str, str, bytes, dict[str, str]] | web.Response:
    """The upload's type, file name, bytes and other form fields, or the platform's refusal."""
    kind = request.query.get("type", "")
    limit = MEDIA_LIMITS.get(kind)
    if limit is None:
        return error(40004)
    try:
        form = await request.post()
    except ValueError:
        return error(41005)
    media = form.get("media")
    if not isinstance(media, web.FileField):
        return error(41005)
    content = media.file.read(limit.max_bytes + 1)
    if len(content) > limit.max_bytes:
        return error(_TOO_LARGE[kind])
    if not content or sniff_format(content[:16]) not in limit.formats:
        return error(40005)
    others = {k: v for k, v in form.items() if isinstance(v, str)}
    return kind, media.filename or "", content, others


def _file(medium: FakeMedium) -> web.Response:
    found = sniff_format(medium.content[:16]) or ""
    return web.Response(
        body=medium.content,
        content_type=CONTENT_TYPES.get(found, "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{medium.filename}"'},
    )


def _media_id() -> str:
    return secrets.token_urlsafe(48)
