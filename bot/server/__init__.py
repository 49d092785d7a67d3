"""`wechat-bot serve` and the optional speed layer: the lean HTTP path for pushes, batching and
eager task start. Only `bot.server` imports the fast path; the webhook never depends on it."""
