"""`wechat-bot serve` and the optional speed layer: the lean HTTP path for pushes, batching and
eager task start. Only `bot.server` imports the fast path; the webhook never depends on it."""

from __future__ import annotations

from bot.server.serve import serve

__all__ = ["serve"]
