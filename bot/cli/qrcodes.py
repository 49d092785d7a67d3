"""`wechat-bot qrcode create`: a parameter QR code, its URL and expiry, and its image.

A scene of digits is an integer scene (`QR_SCENE` / `QR_LIMIT_SCENE`), anything else a string
scene; a follow through the code reaches the handlers as `subscribe` with `qrscene_<scene>`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.cli.account import EXIT_OK, run_operation
from bot.client.api import WeChatAPI
from bot.client.qrcodes import MAX_EXPIRE_SECONDS
from bot.config import Config
from bot.storage.base import Storage
from bot.wechat.media_formats import sniff_format

DEFAULT_EXPIRE_SECONDS = MAX_EXPIRE_SECONDS  # 30 days, the longest a temporary code lives


async def create(
    config: Config, *, scene: str, expires: int | None, permanent: bool, out: str | None
) -> int:
    """Create the code, print what it is, save its image to `out` when given."""
    chosen: int | str = int(scene) if scene.isascii() and scene.isdigit() else scene

    async def make(api: WeChatAPI, _storage: Storage) -> int:
        if permanent:
            code = await api.qrcodes.create_permanent(chosen)
        else:
            code = await api.qrcodes.create_temporary(chosen, expires or DEFAULT_EXPIRE_SECONDS)
        print(f"scene:   {code.scene!r} ({'permanent' if permanent else 'temporary'})")
        print(f"ticket:  {code.ticket}")
        print(f"url:     {code.url}")
        print(f"image:   {code.image_url}")
        if code.expires_at is None:
            print("expires: never")
        else:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(code.expires_at))
            print(f"expires: {when} (in {code.expire_seconds:,} s)")
        if out is not None:
            image = await api.qrcodes.image(code.ticket)
            path = Path(out)
            await asyncio.to_thread(path.write_bytes, image)
            kind = (sniff_format(image[:16]) or "unknown format").upper()
            print(f"saved:   {path} ({len(image):,} bytes, {kind})")
        return EXIT_OK

    return await run_operation(config, make)
