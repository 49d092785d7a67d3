"""The operator commands' connection to the account: the API client `serve` would build.

It opens the same store as the bot (Redis when `REDIS_URL` is set, so the access token and the
media ids are shared with the running instances instead of fetched anew) and closes it after.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from bot.client.api import WeChatAPI, client_for
from bot.client.errors import LimitError, WeChatAPIError
from bot.config import Config
from bot.storage import StorageUnavailable, open_storage
from bot.storage.base import Storage

EXIT_OK = 0
EXIT_REFUSED = 1  # the platform (or a check of ours) said no
EXIT_INVALID = 2  # the request itself is wrong (a limit, the configuration)


@asynccontextmanager
async def open_account(config: Config) -> AsyncIterator[tuple[WeChatAPI, Storage]]:
    """The account's API client and the bot's store, closed when the block ends."""
    storage = await open_storage(
        redis_url=config.redis_url or None,
        namespace=f"wechat-bot:{config.app_id}",
        data_dir=Path(config.data_dir),
        max_entries=config.storage_max_entries,
        timeout=config.redis_timeout,
    )
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=config.api_timeout))
    try:
        yield client_for(config, session, storage), storage
    finally:
        await session.close()
        await storage.close()


async def run_operation(
    config: Config, operation: Callable[[WeChatAPI, Storage], Awaitable[int]]
) -> int:
    """Run `operation` against the account; refusals become one `wechat-bot:` line and a code."""
    try:
        async with open_account(config) as (api, storage):
            return await operation(api, storage)
    except LimitError as exc:
        fail(f"{exc} (nothing was sent)")
        return EXIT_INVALID
    except WeChatAPIError as exc:
        fail(str(exc))
        return EXIT_REFUSED
    except StorageUnavailable as exc:
        fail(f"redis: {exc}")
        return EXIT_REFUSED


def fail(line: str) -> None:
    """One line on stderr, prefixed as every `wechat-bot` error is."""
    print(f"wechat-bot: {line}", file=sys.stderr, flush=True)
