"""Keyword replies: a regex group picks the city out of "天气 北京" / "weather Paris" (a canned,
clearly-demo forecast), and "help" / "帮助" / "幫助" lists what this bot understands.
Copy it for any "keyword → answer" feature; `ctx.match` holds the regex's groups.
"""

from __future__ import annotations

import re

from bot import Context, Message, Router

router = Router("keywords")

# One line, a keyword, a space, then up to 20 characters of city (no newlines: a sentence is not
# a command)
_WEATHER = re.compile(r"^\s*(?:天气|天氣|weather)\s+(?P<city>\S.{0,19}?)\s*$", re.IGNORECASE)
_HELP_WORDS = re.compile(r"^\s*(?:help|帮助|幫助|\?|？)\s*$", re.IGNORECASE)

_FORECAST = {
    "zh_CN": "【演示】{city}：晴，25°C。这是示例回复，并没有查询真实天气。",
    "zh_TW": "【示範】{city}：晴，25°C。這是示例回覆，並沒有查詢真實天氣。",
    "en": "[demo] {city}: sunny, 25°C. A canned answer: no real forecast was looked up.",
}
_HELP = {
    "zh_CN": "我能听懂：\n"
    "· 天气 北京：天气（演示）\n"
    "· 叫我小王：设置我对你的称呼\n"
    "· language en / 语言 繁體：切换语言\n"
    "· 人工：转人工客服\n"
    "· 报告：生成一份报告（较慢）\n"
    "· 发图片或语音：我会回给你\n"
    "· 帮助：显示本说明",
    "zh_TW": "我能聽懂：\n"
    "· 天氣 台北：天氣（示範）\n"
    "· 叫我小王：設定我對你的稱呼\n"
    "· language en / 語言 简体：切換語言\n"
    "· 人工：轉人工客服\n"
    "· 報告：產生一份報告（較慢）\n"
    "· 傳圖片或語音：我會回給你\n"
    "· 幫助：顯示本說明",
    "en": "I understand:\n"
    "· weather Paris: the weather (demo)\n"
    "· call me Sam (叫我…): what I call you\n"
    "· language en / language zh_TW: switch language\n"
    "· human: talk to a person\n"
    "· report: build a report (slow)\n"
    "· an image or a voice message: I send it back\n"
    "· help: this list",
}


@router.text(_WEATHER)
async def weather(msg: Message, ctx: Context) -> str:
    """ "天气 北京" / "天氣 台北" / "weather Paris": a canned forecast for the captured city."""
    city = ctx.match["city"] if ctx.match else ""
    return _FORECAST[await ctx.language()].format(city=city)


@router.text(_HELP_WORDS)
async def help_menu(msg: Message, ctx: Context) -> str:
    """ "help" / "帮助" / "幫助" / "?": everything the shipped handlers answer."""
    return _HELP[await ctx.language()]
