"""Handlers the scale-out tests route to: a slow one that says which instance ran it."""

from __future__ import annotations

import asyncio
import os
import re

from bot import Context, Message, Router

router = Router("scale")


@router.text(re.compile(r"^once ([\d.]+)$"))
async def once(msg: Message, ctx: Context) -> str:
    """Reports the run to the fake platform, sleeps, then answers with this instance's marker.

    Each run sends one customer-service message, so the fake's `sent` list counts runs across
    processes; the reply names the instance, so two runs could not give identical replies.
    """
    assert ctx.match is not None
    instance = os.environ.get("SCALE_INSTANCE", "?")
    await ctx.api.send_text(msg.from_user, f"run by {instance}")
    await asyncio.sleep(float(ctx.match[1]))
    return f"answered by {instance}"
