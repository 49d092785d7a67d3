"""Slow handlers for the late-answer tests: a text, an image, and one that must not rerun."""

from __future__ import annotations

import asyncio
import re

from bot import Context, ImageReply, Message, Reply, Router

router = Router("late")
runs: dict[str, int] = {}


def _count(msg: Message) -> None:
    key = msg.msg_id or msg.dedup_key
    runs[key] = runs.get(key, 0) + 1


@router.text(re.compile(r"^think ([\d.]+)$"))
async def think(msg: Message, ctx: Context) -> str:
    """Sleeps, then answers a text (a language model's answer, say)."""
    assert ctx.match is not None
    _count(msg)
    await asyncio.sleep(float(ctx.match[1]))
    return f"thought for {ctx.match[1]}s"


@router.text(re.compile(r"^draw ([\d.]+)$"))
async def draw(msg: Message, ctx: Context) -> ImageReply:
    """Sleeps, then answers an image."""
    assert ctx.match is not None
    _count(msg)
    await asyncio.sleep(float(ctx.match[1]))
    return ImageReply("MEDIA_DRAWN")


@router.text(re.compile(r"^pay ([\d.]+)$"), rerun=False)
async def pay(msg: Message, ctx: Context) -> str:
    """Sleeps, then answers: a side effect that must not happen twice."""
    assert ctx.match is not None
    _count(msg)
    await asyncio.sleep(float(ctx.match[1]))
    return "paid"


@router.text("hi")
async def hi(msg: Message, ctx: Context) -> str:
    """Answers at once."""
    return "hello"


@router.text(re.compile(r"^many (\d+)$"))
async def many(msg: Message, ctx: Context) -> list[str | Reply]:
    """Answers with several replies (the first passive, the rest through the API)."""
    assert ctx.match is not None
    return [f"part {n}" for n in range(1, int(ctx.match[1]) + 1)]


@router.event("click", "MANY")
async def many_on_click(msg: Message, ctx: Context) -> list[str | Reply]:
    """A menu click answered with seven replies."""
    return [f"part {n}" for n in range(1, 8)]
