"""Parameter QR codes (platform notes §8): temporary and permanent, integer and string scenes.

A follow through one arrives as `subscribe` with `EventKey=qrscene_<scene>`, a follower's scan
as `SCAN` with the bare scene: `handlers/qrcode.py` answers both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote

from bot.client.caller import APICaller
from bot.client.errors import ERR_BAD_ANSWER, LimitError, WeChatAPIError
from bot.client.limits import check_chars, check_range

MAX_EXPIRE_SECONDS = 2_592_000  # 30 days
MIN_EXPIRE_SECONDS = 60
MAX_PERMANENT_SCENE_ID = 100_000
MAX_SCENE_STR = 64
_INT32 = 2**31 - 1


@dataclass(frozen=True)
class QRCode:
    """A created code: its `ticket`, what it encodes (`url`) and when it stops working."""

    ticket: str
    url: str
    scene: int | str
    expire_seconds: int | None  # None: permanent
    image_url: str
    created_at: float

    @property
    def expires_at(self) -> float | None:
        """Unix time the code stops working (None: permanent)."""
        return None if self.expire_seconds is None else self.created_at + self.expire_seconds


class QRCodeAPI:
    """qrcode/create and the image (showqrcode)."""

    def __init__(self, api: APICaller) -> None:
        """Calls go through `api`."""
        self._api = api

    async def create_temporary(self, scene: int | str, expire_seconds: int) -> QRCode:
        """A code valid `expire_seconds` (60 to 2,592,000); `scene` a non-zero 32-bit integer
        or a string of 1 to 64 characters."""
        check_range("expire_seconds", expire_seconds, MIN_EXPIRE_SECONDS, MAX_EXPIRE_SECONDS)
        if isinstance(scene, str):
            action, info = "QR_STR_SCENE", _str_scene(scene)
        else:
            check_range("scene_id", scene, -_INT32 - 1, _INT32)
            if scene == 0:
                raise LimitError("scene_id", "must not be 0")
            action, info = "QR_SCENE", {"scene_id": scene}
        body = {
            "expire_seconds": expire_seconds,  # always sent: the docs disagree on the default
            "action_name": action,
            "action_info": {"scene": info},
        }
        return await self._create(body, scene, expire_seconds)

    async def create_permanent(self, scene: int | str) -> QRCode:
        """A code that never expires (100,000 per account); `scene` 1 to 100,000 or a string
        of 1 to 64 characters."""
        if isinstance(scene, str):
            action, info = "QR_LIMIT_STR_SCENE", _str_scene(scene)
        else:
            check_range("scene_id", scene, 1, MAX_PERMANENT_SCENE_ID)
            action, info = "QR_LIMIT_SCENE", {"scene_id": scene}
        return await self._create({"action_name": action, "action_info": {"scene": info}}, scene)

    def image_url(self, ticket: str) -> str:
        """Where the code's image is served (no token needed)."""
        return f"{self._api.mp_base_url}/cgi-bin/showqrcode?ticket={quote(ticket, safe='')}"

    async def image(self, ticket: str) -> bytes:
        """The code's image (JPEG or PNG bytes)."""
        download = await self._api.fetch_public(self.image_url(ticket), "showqrcode")
        return download.content

    async def _create(
        self, body: dict[str, object], scene: int | str, expire_seconds: int | None = None
    ) -> QRCode:
        data = await self._api.call("POST", "/cgi-bin/qrcode/create", json_body=body)
        ticket = data.get("ticket")
        if not isinstance(ticket, str) or not ticket:
            raise WeChatAPIError(ERR_BAD_ANSWER, "no ticket in the answer", "qrcode_create")
        expires = data.get("expire_seconds")
        return QRCode(
            ticket=ticket,
            url=str(data.get("url", "")),
            scene=scene,
            expire_seconds=int(expires) if isinstance(expires, int) else expire_seconds,
            image_url=self.image_url(ticket),
            created_at=time.time(),
        )


def _str_scene(scene: str) -> dict[str, object]:
    check_chars("scene_str", scene, MAX_SCENE_STR)
    return {"scene_str": scene}
