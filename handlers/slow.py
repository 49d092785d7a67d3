"""A slow handler, relying on the reply budget: "report" / "报告" / "報告" takes `REPORT_SECONDS`.

WeChat waits 5 s for an answer. At `reply_budget` (4 s by default) the webhook answers `success`
(the follower sees nothing yet, and WeChat's retries get the same `success`), the handler keeps
running, and its answer is sent through the customer-service API (`message/custom/send`). That
API needs the customer-service permission (a verified account; otherwise errcode 48001) and a
message from the follower in the last 48 h; a refused or undeliverable late answer is logged
and dropped, not retried forever. A shutdown waits up to `shutdown_grace` for it.
"""

from __future__ import annotations

import asyncio
import re

from bot import Context, Message, Router

router = Router("slow")

REPORT_SECONDS = 6.0
"""How long building the report takes: longer than the reply budget on purpose."""

_REPORT = re.compile(r"^\s*(?:report|报告|報告)\s*$", re.IGNORECASE)

_DONE = {
    "zh_CN": "你的报告（演示）已生成：用时 {seconds:g} 秒，一切正常。",
    "zh_TW": "你的報告（示範）已產生：用時 {seconds:g} 秒，一切正常。",
    "en": "Your (demo) report is ready: it took {seconds:g} s, and all is well.",
}


@router.text(_REPORT)
async def report(msg: Message, ctx: Context) -> str:
    """Build the report slowly; the framework decides whether the answer is passive or late."""
    language = await ctx.language()
    seconds = REPORT_SECONDS  # read at call time, so a test (or config code) may change it
    await asyncio.sleep(seconds)  # stands in for a slow query or an upstream API
    return _DONE[language].format(seconds=seconds)
