"""`wechat-bot media upload FILE --type image`: temporary media (3 days) or permanent material.

The file is checked first (size and format for its type), so a file the platform would refuse
costs no call.
"""

from __future__ import annotations

import time

from bot.cli.account import EXIT_OK, run_operation
from bot.client.api import WeChatAPI
from bot.client.media import TEMPORARY_LIFETIME
from bot.config import Config
from bot.storage.base import Storage


async def upload(
    config: Config, *, file: str, kind: str, permanent: bool, title: str, introduction: str
) -> int:
    """Upload `file` as `kind`; print its media_id (and how long it lives)."""

    async def send(api: WeChatAPI, _storage: Storage) -> int:
        if permanent:
            material = await api.media.add_material(
                kind, file, title=title, introduction=introduction
            )
            print(f"media_id: {material.media_id}")
            print(f"type:     {kind} (permanent material)")
            if material.url:
                print(f"url:      {material.url}")
            return EXIT_OK
        uploaded = await api.media.upload(kind, file)
        until = time.gmtime(uploaded.created_at + TEMPORARY_LIFETIME)
        print(f"media_id: {uploaded.media_id}")
        print(f"type:     {uploaded.type} (temporary)")
        print(f"expires:  {time.strftime('%Y-%m-%d %H:%M:%S UTC', until)} (3 days)")
        return EXIT_OK

    return await run_operation(config, send)
