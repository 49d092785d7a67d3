"""The fake platform's parameter QR codes: qrcode/create with the platform's checks, and the
image at showqrcode (a small valid PNG: a test opens it by its signature and IHDR)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.testing.fake_http import Guard, error, json_body, json_response

ENDPOINTS = ("qrcode_create", "showqrcode")
MAX_EXPIRE = 2_592_000  # the platform caps a temporary code at 30 days
DEFAULT_EXPIRE = 60  # what the fake uses when expire_seconds is left out (docs disagree)
MAX_PERMANENT = 100_000
MAX_CODES = 100_000  # codes remembered by the fake (oldest forgotten first)
_INT32 = 2**31
_MODULES = 25  # the image's grid
_SCALE = 4


@dataclass(frozen=True)
class FakeQRCode:
    """A code the fake issued."""

    ticket: str
    scene: int | str
    permanent: bool
    expires_at: float | None


def png_image(rows: list[list[bool]], scale: int = _SCALE) -> bytes:
    """A black-and-white PNG of `rows` (True is black), each module `scale` pixels wide."""
    width = len(rows[0]) * scale
    raw = b"".join(
        b"\x00" + bytes(0 if dark else 255 for dark in row for _ in range(scale))
        for row in rows
        for _ in range(scale)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, len(rows) * scale, 8, 0, 0, 0, 0)  # 8-bit grey
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _pattern(ticket: str) -> list[list[bool]]:
    """A QR-looking grid derived from the ticket (finder squares in three corners)."""
    bits = hashlib.sha256(ticket.encode()).digest() * 3
    grid = [
        [bool(bits[(r * _MODULES + c) // 8] >> (c % 8) & 1) for c in range(_MODULES)]
        for r in range(_MODULES)
    ]
    for top, left in ((0, 0), (0, _MODULES - 7), (_MODULES - 7, 0)):
        for r in range(7):
            for c in range(7):
                ring = max(abs(r - 3), abs(c - 3))
                grid[top + r][left + c] = ring != 2
    return grid


class FakeQRCodes:
    """The codes the fake issued, by ticket."""

    def __init__(self, guard: Guard, clock: Callable[[], float]) -> None:
        """`clock` dates temporary codes."""
        self._guard = guard
        self._clock = clock
        self.codes: dict[str, FakeQRCode] = {}
        self.permanent_count = 0

    def routes(self) -> list[web.RouteDef]:
        """qrcode/create and showqrcode."""
        return [
            web.post("/cgi-bin/qrcode/create", self._create),
            web.get("/cgi-bin/showqrcode", self._show),
        ]

    def scene_of(self, ticket: str) -> int | str | None:
        """The scene a live code carries (what a scan of it sends), None when unknown."""
        code = self.codes.get(ticket)
        if code is None or (code.expires_at is not None and self._clock() >= code.expires_at):
            return None
        return code.scene

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "qrcode_create")) is not None:
            return answer
        body = await json_body(request)
        if not isinstance(body, dict):
            return error(47001)
        action = body.get("action_name")
        if action not in ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"):
            return error(40052)
        info = body.get("action_info")
        scene_info = info.get("scene") if isinstance(info, dict) else None
        if not isinstance(scene_info, dict):
            return error(40053)
        permanent = action.startswith("QR_LIMIT")
        scene = _scene(scene_info, action.endswith("STR_SCENE"), permanent)
        if scene is None:
            return error(40053)
        expire: int | None = None
        if not permanent:
            raw = body.get("expire_seconds", DEFAULT_EXPIRE)
            if not isinstance(raw, int) or isinstance(raw, bool) or raw <= 0:
                return error(40053)
            expire = min(raw, MAX_EXPIRE)
        elif self.permanent_count >= MAX_PERMANENT:
            return error(45029)
        ticket = base64.b64encode(secrets.token_bytes(48)).decode()  # + / = as the real ones
        if len(self.codes) >= MAX_CODES:
            del self.codes[next(iter(self.codes))]
        now = self._clock()
        self.codes[ticket] = FakeQRCode(
            ticket, scene, permanent, None if expire is None else now + expire
        )
        self.permanent_count += permanent
        answer_body: dict[str, Any] = {
            "ticket": ticket,
            "url": f"http://weixin.qq.com/q/{secrets.token_urlsafe(16)}",
        }
        if expire is not None:
            answer_body["expire_seconds"] = expire
        return json_response(answer_body)

    async def _show(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "showqrcode", token=False)) is not None:
            return answer
        ticket = request.query.get("ticket", "")
        if self.scene_of(ticket) is None:
            return web.Response(status=404, text="ticket not found")
        return web.Response(body=png_image(_pattern(ticket)), content_type="image/png")


def _scene(info: dict[str, Any], string: bool, permanent: bool) -> int | str | None:
    """The scene of `action_info.scene`, None when the platform would refuse it."""
    if string:
        value = info.get("scene_str")
        return value if isinstance(value, str) and 1 <= len(value) <= 64 else None
    value = info.get("scene_id")
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if permanent:
        return value if 1 <= value <= MAX_PERMANENT else None
    return value if value != 0 and -_INT32 <= value < _INT32 else None
