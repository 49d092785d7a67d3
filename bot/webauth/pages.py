# ruff: noqa: E501 -- the pages' sentences read best unbroken
"""The pages a follower sees after the platform's consent screen, in their language.

Mobile-sized and styled like WeChat's own result pages (WeUI's "msg" page: an icon, a title, a
line of text), since they open in WeChat's browser. Everything put in them is HTML-escaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from aiohttp import web

# No script, no remote resource; the URL carries a code and a state, so no Referer either.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True, slots=True)
class PageText:
    """A page's title and line, per language (`{name}` is the nickname where it applies)."""

    icon: str  # "success", "info" or "warn"
    title: dict[str, str]
    line: dict[str, str]


STORED = PageText(
    "success",
    {"zh_CN": "好的，{name}！", "zh_TW": "好的，{name}！", "en": "Great, {name}!"},
    {
        "zh_CN": "回到聊天吧，以后我就用你的微信昵称称呼你。",
        "zh_TW": "回到聊天吧，以後我就用你的微信暱稱稱呼你。",
        "en": "Head back to the chat: I'll call you by your WeChat name from now on.",
    },
)
DECLINED = PageText(
    "info",
    {"zh_CN": "没关系", "zh_TW": "沒關係", "en": "No problem"},
    {
        "zh_CN": "我没有保存任何信息。回到聊天，也可以发送“叫我”加上名字告诉我怎么称呼你。",
        "zh_TW": "我沒有保存任何資訊。回到聊天，也可以發送「叫我」加上名字告訴我怎麼稱呼你。",
        "en": 'Nothing was saved. Back in the chat you can also send "call me" and a name.',
    },
)
SNAPSHOT = PageText(
    "info",
    {"zh_CN": "还差一步", "zh_TW": "還差一步", "en": "One more step"},
    {
        "zh_CN": "这是预览页面，我没有保存任何信息。请在聊天里点开链接，再点“使用完整服务”。",
        "zh_TW": "這是預覽頁面，我沒有保存任何資訊。請在聊天裡點開連結，再點「使用完整服務」。",
        "en": 'This is a preview, and nothing was saved. Open the link from the chat and tap "使用完整服务" (use full service).',
    },
)
NO_NICKNAME = PageText(
    "info",
    {"zh_CN": "没有拿到昵称", "zh_TW": "沒有拿到暱稱", "en": "No WeChat name came back"},
    {
        "zh_CN": "微信没有提供昵称，我没有保存任何信息。可以在聊天里发送“叫我”加上名字。",
        "zh_TW": "微信沒有提供暱稱，我沒有保存任何資訊。可以在聊天裡發送「叫我」加上名字。",
        "en": 'WeChat gave no name, so nothing was saved. In the chat, send "call me" and a name.',
    },
)
INVALID = PageText(
    "warn",
    {"zh_CN": "链接无效", "zh_TW": "連結無效", "en": "This link is not valid"},
    {
        "zh_CN": "这个链接不是我发出的，或已被改动。我没有保存任何信息。请在聊天里发送“用微信昵称”获取新链接。",
        "zh_TW": "這個連結不是我發出的，或已被改動。我沒有保存任何資訊。請在聊天裡發送「用微信暱稱」取得新連結。",
        "en": 'This link did not come from me or was changed. Nothing was saved. Send "use my WeChat name" in the chat for a new one.',
    },
)
EXPIRED = PageText(
    "warn",
    {"zh_CN": "链接已过期", "zh_TW": "連結已過期", "en": "This link has expired"},
    {
        "zh_CN": "我没有保存任何信息。请在聊天里发送“用微信昵称”获取新链接。",
        "zh_TW": "我沒有保存任何資訊。請在聊天裡發送「用微信暱稱」取得新連結。",
        "en": 'Nothing was saved. Send "use my WeChat name" in the chat for a new link.',
    },
)
USED = PageText(
    "warn",
    {"zh_CN": "链接已用过", "zh_TW": "連結已用過", "en": "This link was already used"},
    {
        "zh_CN": "每个链接只能用一次，这次我没有保存任何信息。请在聊天里发送“用微信昵称”获取新链接。",
        "zh_TW": "每個連結只能用一次，這次我沒有保存任何資訊。請在聊天裡發送「用微信暱稱」取得新連結。",
        "en": 'Each link works once; nothing was saved this time. Send "use my WeChat name" in the chat for a new one.',
    },
)
MISMATCH = PageText(
    "warn",
    {
        "zh_CN": "不是发给你的链接",
        "zh_TW": "不是發給你的連結",
        "en": "This link was meant for someone else",
    },
    {
        "zh_CN": "这个链接是发给另一位微信用户的，我没有保存任何信息。请在你自己的聊天里发送“用微信昵称”。",
        "zh_TW": "這個連結是發給另一位微信用戶的，我沒有保存任何資訊。請在你自己的聊天裡發送「用微信暱稱」。",
        "en": 'This link was sent to another WeChat user; nothing was saved. Send "use my WeChat name" in your own chat.',
    },
)
PLATFORM_REFUSED = PageText(
    "warn",
    {"zh_CN": "授权没有完成", "zh_TW": "授權沒有完成", "en": "Authorization did not complete"},
    {
        "zh_CN": "微信没有确认这次授权（可能已过期或已用过），我没有保存任何信息。请在聊天里发送“用微信昵称”再试一次。",
        "zh_TW": "微信沒有確認這次授權（可能已過期或已用過），我沒有保存任何資訊。請在聊天裡發送「用微信暱稱」再試一次。",
        "en": 'WeChat did not confirm this authorization (it may have expired or been used); nothing was saved. Send "use my WeChat name" in the chat to try again.',
    },
)
UNAVAILABLE = PageText(
    "warn",
    {"zh_CN": "暂时无法完成", "zh_TW": "暫時無法完成", "en": "Not possible right now"},
    {
        "zh_CN": "现在联系不上微信或无法保存，我没有保存任何信息。请稍后在聊天里发送“用微信昵称”再试一次。",
        "zh_TW": "現在聯繫不上微信或無法保存，我沒有保存任何資訊。請稍後在聊天裡發送「用微信暱稱」再試一次。",
        "en": 'WeChat could not be reached or nothing could be saved just now. Send "use my WeChat name" in the chat later to try again.',
    },
)

_ICONS = {
    "success": ("#07c160", "✓"),
    "info": ("#10aeff", "i"),
    "warn": ("#fa9d3b", "!"),
}
_HTML_LANG = {"zh_CN": "zh-Hans", "zh_TW": "zh-Hant", "en": "en"}
_STYLE = """
  html { -webkit-text-size-adjust: 100%; }
  body { margin: 0; background: #ededed; color: #191919; min-height: 100vh;
    font: 17px/1.5 -apple-system, "PingFang SC", "Helvetica Neue", "Microsoft YaHei", sans-serif; }
  main { box-sizing: border-box; max-width: 480px; margin: 0 auto; padding: 56px 24px 24px;
    min-height: 100vh; background: #fff; text-align: center; }
  .icon { width: 64px; height: 64px; margin: 0 auto 24px; border-radius: 50%;
    color: #fff; font-size: 40px; line-height: 64px; font-weight: 600; }
  h1 { margin: 0 0 12px; font-size: 22px; font-weight: 500; word-break: break-word; }
  p { margin: 0 0 32px; color: rgba(0,0,0,.55); font-size: 15px; }
  .account { position: fixed; left: 0; right: 0; bottom: 24px; color: rgba(0,0,0,.3);
    font-size: 13px; }
"""


def render_page(text: PageText, language: str, account: str, name: str = "") -> str:
    """The page's HTML in `language` (zh_CN when unknown)."""
    lang = language if language in text.title else "zh_CN"
    colour, glyph = _ICONS[text.icon]
    title = html.escape(text.title[lang].format(name=name))
    line = html.escape(text.line[lang])
    return (
        f'<!doctype html>\n<html lang="{_HTML_LANG[lang]}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">'
        f"<title>{html.escape(account)}</title><style>{_STYLE}</style></head>"
        f'<body><main data-result="{text.icon}"><div class="icon" style="background:{colour}">'
        f"{glyph}</div><h1>{title}</h1><p>{line}</p>"
        f'<div class="account">{html.escape(account)}</div></main></body></html>\n'
    )


def page_response(
    status: int, text: PageText, language: str, account: str, name: str = ""
) -> web.Response:
    """The page as an HTML response with the headers above."""
    return web.Response(
        status=status,
        text=render_page(text, language, account, name),
        content_type="text/html",
        charset="utf-8",
        headers=HEADERS,
    )
