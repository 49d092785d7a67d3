"""wechat-bot: a WeChat Official Account bot framework.

Write handlers with `Router`; every handler has one signature:
`async def handler(msg: Message, ctx: Context) -> str | Reply | None`.
"""

from __future__ import annotations

from bot.client.errors import LimitError, WeChatAPIError
from bot.followers.language import LANGUAGES, normalize_language
from bot.followers.names import NAME_QUESTION, NAME_STATEMENT, spoken_name
from bot.routing.context import Context
from bot.routing.router import SKIP, Router, Skip
from bot.storage.base import StorageUnavailable
from bot.webauth.links import consent_link
from bot.wechat.messages import (
    ClickEvent,
    Event,
    ImageMessage,
    LinkMessage,
    LocationEvent,
    LocationMessage,
    Message,
    ScanEvent,
    SubscribeEvent,
    SubscribeMsgEvent,
    SubscribeNotice,
    TemplateSendJobFinishEvent,
    TextMessage,
    UnsubscribeEvent,
    VideoMessage,
    ViewEvent,
    VoiceMessage,
)
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
    "LANGUAGES",
    "NAME_QUESTION",
    "NAME_STATEMENT",
    "SKIP",
    "Article",
    "ClickEvent",
    "Context",
    "Event",
    "ImageMessage",
    "ImageReply",
    "LimitError",
    "LinkMessage",
    "LocationEvent",
    "LocationMessage",
    "Message",
    "MusicReply",
    "NewsReply",
    "Reply",
    "Router",
    "ScanEvent",
    "Skip",
    "StorageUnavailable",
    "SubscribeEvent",
    "SubscribeMsgEvent",
    "SubscribeNotice",
    "TemplateSendJobFinishEvent",
    "TextMessage",
    "TextReply",
    "TransferCustomerServiceReply",
    "UnsubscribeEvent",
    "VideoMessage",
    "VideoReply",
    "ViewEvent",
    "VoiceMessage",
    "VoiceReply",
    "WeChatAPIError",
    "consent_link",
    "normalize_language",
    "spoken_name",
]
