"""Handlers the webhook tests route to: one per reply and message type, and failing ones."""

from __future__ import annotations

import asyncio
import re

from bot import (
    SKIP,
    Article,
    Context,
    Event,
    ImageReply,
    Message,
    MusicReply,
    NewsReply,
    Reply,
    Router,
    Skip,
    TransferCustomerServiceReply,
    VideoReply,
    VoiceReply,
)
from bot.wechat.messages import (
    ImageMessage,
    LinkMessage,
    LocationMessage,
    VideoMessage,
    VoiceMessage,
)

router = Router("samples")
calls: dict[str, int] = {}

REPLIES: dict[str, Reply] = {
    "image": ImageReply("MEDIA_IMG"),
    "voice": VoiceReply("MEDIA_VOICE"),
    "video": VideoReply("MEDIA_VIDEO", "A title ]]> <b>&", "描述"),
    "music": MusicReply("Song", "Desc", "http://m/1.mp3", "http://m/1hq.mp3", "THUMB"),
    "news": NewsReply(
        (
            Article("First", "one", "http://p/1.jpg", "http://u/1"),
            Article("Second", "two", "http://p/2.jpg", "http://u/2"),
        )
    ),
    "human": TransferCustomerServiceReply(),
    "agent": TransferCustomerServiceReply("kf2001@account"),
}


@router.text(re.compile(r"^reply (\w+)$"))
async def reply_of_type(msg: Message, ctx: Context) -> Reply | None:
    """`reply image` → an ImageReply, and so on."""
    assert ctx.match is not None
    return REPLIES.get(ctx.match[1])


@router.text("boom")
async def boom(msg: Message, ctx: Context) -> str:
    """A handler that raises."""
    raise RuntimeError("handler exploded")


@router.text(re.compile(r"^slow ([\d.]+)$"))
async def slow(msg: Message, ctx: Context) -> str:
    """Sleeps, then answers; counts its runs per MsgId."""
    assert ctx.match is not None
    key = msg.msg_id or ""
    calls[key] = calls.get(key, 0) + 1
    await asyncio.sleep(float(ctx.match[1]))
    return f"done after {ctx.match[1]}s"


@router.text("pass")
async def passes(msg: Message, ctx: Context) -> Skip:
    """Always passes to the next route."""
    return SKIP


@router.text("pass")
async def after_pass(msg: Message, ctx: Context) -> str:
    """The route after a SKIP."""
    return "second handler answered"


@router.text("silent")
async def silent(msg: Message, ctx: Context) -> None:
    """Answers nothing."""
    return None


@router.text(re.compile(r"^echo (.*)$", re.DOTALL))
async def echo(msg: Message, ctx: Context) -> str:
    """Echoes the text after `echo `."""
    assert ctx.match is not None
    return ctx.match[1]


@router.event("CLICK", "MENU_A")
async def menu_a(msg: Message, ctx: Context) -> str:
    """A specific menu key."""
    return "menu A"


@router.message(ImageMessage)
async def image(msg: Message, ctx: Context) -> str:
    assert isinstance(msg, ImageMessage)
    return f"image {msg.media_id}"


@router.message(VoiceMessage)
async def voice(msg: Message, ctx: Context) -> str:
    assert isinstance(msg, VoiceMessage)
    return f"voice {msg.format} {msg.recognition}"


@router.message(VideoMessage)
async def video(msg: Message, ctx: Context) -> str:
    assert isinstance(msg, VideoMessage)
    return f"{msg.msg_type} {msg.media_id}"


@router.message(LocationMessage)
async def location(msg: Message, ctx: Context) -> str:
    assert isinstance(msg, LocationMessage)
    return f"location {msg.location_x} {msg.location_y} {msg.label}"


@router.message(LinkMessage)
async def link(msg: Message, ctx: Context) -> str:
    assert isinstance(msg, LinkMessage)
    return f"link {msg.url}"


@router.message("event")
async def any_event(msg: Message, ctx: Context) -> str:
    """Every other event: its class and lower-cased name."""
    assert isinstance(msg, Event)
    return f"{type(msg).__name__} {msg.event} {msg.event_key}"


@router.message()
async def anything(msg: Message, ctx: Context) -> str:
    """Whatever is left (unknown types)."""
    return f"other {type(msg).__name__} {msg.msg_type}"
