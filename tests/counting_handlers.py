"""A handler module that records every message it receives, so tests can prove none arrived."""

from __future__ import annotations

from bot import Context, Message, Router
from bot.wechat.messages import TextMessage

router = Router("counting")
# Contents of every text message a handler saw, in order; tests clear it before each run
received: list[str] = []


@router.text("silent")
async def silent(msg: Message, ctx: Context) -> None:
    """Records the message and answers nothing (the webhook says `success`)."""
    assert isinstance(msg, TextMessage)
    received.append(msg.content)
    return None


@router.text()
async def answer(msg: Message, ctx: Context) -> str:
    """Records the message and answers `got <content>`."""
    assert isinstance(msg, TextMessage)
    received.append(msg.content)
    return f"got {msg.content}"
