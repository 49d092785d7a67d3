"""Custom-menu buttons: a CLICK sends the button's key, answered here like a message; a VIEW
(a link button) only reports that the follower opened the URL, so it gets no answer.
The menu itself is `menu:` in config.yaml; `wechat-bot menu push` refuses a click key that no
route here answers.
"""

from __future__ import annotations

from pathlib import Path

from bot import Context, ImageReply, Message, Router

router = Router("menu")

# Uploaded on the first click, then answered by its cached media id for the next 3 days.
POSTER = ImageReply(file=Path(__file__).with_name("static") / "poster.png")

_ABOUT = {
    "zh_CN": "{account} 是一个演示公众号，展示 wechat-bot 能做什么。发送“帮助”看看我能听懂什么。",
    "zh_TW": "{account} 是一個示範公眾號，展示 wechat-bot 能做什麼。發送「幫助」看看我能聽懂什麼。",
    "en": "{account} is a demo account showing what the wechat-bot framework can do. "
    'Send "help" to see what I understand.',
}
_CONTACT = {
    "zh_CN": "联系我们（示例）：邮箱 hello@example.com，工作日 9:00–18:00。也可以发送“人工”。",
    "zh_TW": "聯絡我們（示例）：信箱 hello@example.com，工作日 9:00–18:00。也可以發送「人工」。",
    "en": 'Contact us (example details): hello@example.com, weekdays 9:00-18:00. Or send "human".',
}


@router.event("CLICK", "MENU_ABOUT")
async def about(msg: Message, ctx: Context) -> str:
    """The "关于我们" button."""
    return _ABOUT[await ctx.language()].format(account=ctx.config.account_name)


@router.event("CLICK", "MENU_CONTACT")
async def contact(msg: Message, ctx: Context) -> str:
    """The "联系我们" button."""
    return _CONTACT[await ctx.language()]


@router.event("CLICK", "MENU_POSTER")
async def poster(msg: Message, ctx: Context) -> ImageReply:
    """The "海报" button: this month's poster, from a local file."""
    return POSTER


@router.event("VIEW")
async def link_opened(msg: Message, ctx: Context) -> None:
    """A link button: WeChat opens the page itself, and an answer would never be shown."""
    return None
