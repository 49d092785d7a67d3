"""wechat-bot: a WeChat Official Account bot framework.

Write handlers with `Router`; every handler has one signature:
`async def handler(msg: Message, ctx: Context) -> str | Reply | None`.
"""

from __future__ import annotations

from bot.routing.context import Context
from bot.routing.router import SKIP, Router, Skip
from bot.wechat.messages import Event, Message, TextMessage
from bot.wechat.replies import (
    Article,
    ImageReply,
    MusicReply,
    NewsReply,
    Reply,
    TextReply,
    TransferCustomerServiceReply,
    VideoReply,
    VoiceReply,
)

__all__ = [
    "SKIP",
    "Article",
    "Context",
    "Event",
    "ImageReply",
    "Message",
    "MusicReply",
    "NewsReply",
    "Reply",
    "Router",
    "Skip",
    "TextMessage",
    "TextReply",
    "TransferCustomerServiceReply",
    "VideoReply",
    "VoiceReply",
]
