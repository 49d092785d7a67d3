"""The `wechat-bot` command: serve, demo, simulate, check-config."""

from __future__ import annotations

from bot.cli.main import main

__all__ = ["main"]
