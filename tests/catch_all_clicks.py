"""A handler module with a catch-all CLICK route (for `menu push`'s key check)."""

from __future__ import annotations

from bot import Context, Message, Router

router = Router("catch-all-clicks")


@router.event("CLICK")
async def any_click(msg: Message, ctx: Context) -> str:
    """Every menu key."""
    return "clicked"
