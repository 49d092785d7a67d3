"""`wechat-bot followers export --out followers.csv`: every follower, one CSV row each.

It pages through the follower list (10,000 a call), fetches profiles 100 at a time with
bounded concurrency, waits out the per-minute quota (45011) a bounded number of times and
stops at the daily one (45009). A row: openid, subscribe time (UTC) and scene, the operator's
remark, tag names, and the name and language the bot learned from the follower. The file is
written beside its name and moved into place when complete, so a failed run leaves no half file.
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bot.cli.account import EXIT_OK, run_operation
from bot.client.api import UserInfo, WeChatAPI
from bot.client.errors import WeChatAPIError
from bot.client.quota import within_minute_quota
from bot.config import Config
from bot.followers.store import FollowerStore
from bot.storage.base import Storage

HEADER = (
    "openid",
    "subscribe_time",
    "subscribe_scene",
    "remark",
    "tags",
    "name",
    "language",
)
BATCH = 100  # profiles per user/info/batchget call
DEFAULT_CONCURRENCY = 4
QUOTA_WAIT = 60.0  # seconds to wait when the per-minute quota is reached
QUOTA_RETRIES = 3


async def export(
    config: Config,
    *,
    out: str,
    concurrency: int = DEFAULT_CONCURRENCY,
    quota_wait: float = QUOTA_WAIT,
    progress: TextIO | None = None,
) -> int:
    """Export every follower to `out`; `progress` gets a progress bar (stderr on a terminal)."""
    bar = progress if progress is not None else (sys.stderr if sys.stderr.isatty() else None)

    async def run(api: WeChatAPI, storage: Storage) -> int:
        target = Path(out)
        partial = target.with_name(target.name + ".partial")
        try:
            rows = await write_followers(
                api, FollowerStore(storage), partial, concurrency, quota_wait, bar
            )
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        print(f"✓ exported {rows:,} follower(s) to {target}")
        return EXIT_OK

    return await run_operation(config, run)


async def write_followers(
    api: WeChatAPI,
    followers: FollowerStore,
    path: Path,
    concurrency: int,
    quota_wait: float,
    bar: TextIO | None,
) -> int:
    """Write the CSV to `path`; the number of rows."""
    tag_names = await _tag_names(api)
    limit = asyncio.Semaphore(max(1, concurrency))

    async def profiles(chunk: Sequence[str]) -> list[UserInfo]:
        async with limit:
            return await within_minute_quota(
                lambda: api.batch_get_user_info(chunk), wait=quota_wait, retries=QUOTA_RETRIES
            )

    written = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        async for page in api.users.pages(quota_wait=quota_wait, quota_retries=QUOTA_RETRIES):
            chunks = [page.openids[i : i + BATCH] for i in range(0, len(page.openids), BATCH)]
            for found in await asyncio.gather(*(profiles(c) for c in chunks)):
                for info in found:
                    writer.writerow(await _row(info, followers, tag_names))
                written += len(found)
                _show_progress(bar, written, page.total)
    if bar is not None:
        print(file=bar)
    return written


async def _row(info: UserInfo, followers: FollowerStore, tag_names: dict[int, str]) -> list[str]:
    prefs = await followers.preferences(info.openid)
    subscribed = ""
    if info.subscribe_time:
        subscribed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info.subscribe_time))
    scene = info.raw.get("subscribe_scene")
    return [
        info.openid,
        subscribed,
        scene if isinstance(scene, str) else "",
        info.remark,
        ";".join(tag_names.get(t, str(t)) for t in info.tagid_list),
        prefs.name or "",
        prefs.language or "",
    ]


async def _tag_names(api: WeChatAPI) -> dict[int, str]:
    """Tag id -> name; only ids when the account may not list its tags."""
    try:
        return {tag.id: tag.name for tag in await api.tags.list()}
    except WeChatAPIError as exc:
        if exc.errcode in (45009, 45011, 48001):
            return {}
        raise


def _show_progress(bar: TextIO | None, done: int, total: int) -> None:
    if bar is None:
        return
    share = done / total if total else 1.0
    filled = int(share * 30)
    bar.write(f"\r{done:>9,} / {total:,} [{'#' * filled}{' ' * (30 - filled)}] {share:4.0%}")
    bar.flush()
