"""The greeting: welcomes followers by name, in their language, and lets them set both.

Since 2021 the profile API returns no nickname, so the name comes from the follower ("叫我小王",
"call me Sam"), else the WeChat nickname they shared by web authorization (when
`web_authorization` is enabled, a name-less greeting offers the link), else an old-style
nickname, else the operator's remark, else no name at all.
The language comes from the follower's choice ("language en", "语言 繁體"), else the script
they write in, else the profile (where it is real), else the configured default.
"""

from __future__ import annotations

import re

from bot import (
    NAME_QUESTION,
    NAME_STATEMENT,
    SKIP,
    Context,
    Message,
    Router,
    Skip,
    StorageUnavailable,
    consent_link,
    normalize_language,
    spoken_name,
)

# Task-free: nothing here asks for its task (a profile is fetched in a task of its own).
router = Router("greeting")

MAX_NAME_LENGTH = 32

_LANGUAGE_COMMAND = re.compile(
    r"^\s*(?:(?:language|lang)(?:\s+|\s*[:：]\s*|$)|(?:语言|語言)\s*[:：]?\s*)(?P<value>.*?)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_WECHAT_NAME_COMMAND = re.compile(
    r"^\s*(?:请|請)?(?:用|使用)(?:我的)?微信(?:昵称|暱稱|昵稱|名字)(?:吧)?\s*[.!。！]?\s*$"
    r"|^\s*(?:please\s+)?use\s+my\s+wechat\s+(?:nick)?name(?:\s+please)?\s*[.!]?\s*$",
    re.IGNORECASE,
)
_FORGET_NAME_COMMAND = re.compile(
    r"^\s*(?:请|請)?(?:忘记|忘記|删除|刪除)我的(?:昵称|暱稱|昵稱|名字)(?:吧)?\s*[.!。！]?\s*$"
    r"|^\s*(?:please\s+)?forget\s+my\s+(?:nick)?name(?:\s+please)?\s*[.!]?\s*$",
    re.IGNORECASE,
)
_CONFIRM_NAME = {
    "zh_CN": "好的，以后就叫你{name}。",
    "zh_TW": "好的，以後就叫你{name}。",
    "en": "Got it. I'll call you {name}.",
}
_NAME_TOO_LONG = {
    "zh_CN": "这个名字太长了（最多 {max} 个字），换一个短一点的吧。",
    "zh_TW": "這個名字太長了（最多 {max} 個字），換一個短一點的吧。",
    "en": "That name is too long (at most {max} characters). Please pick a shorter one.",
}
_NAME_MISSING = {
    "zh_CN": "想让我怎么称呼你？发送“叫我”加上名字，例如：叫我小王",
    "zh_TW": "想讓我怎麼稱呼你？發送「叫我」加上名字，例如：叫我小王",
    "en": 'What should I call you? Send "call me" and a name, for example: call me Sam',
}
_CONFIRM_LANGUAGE = {
    "zh_CN": "好的，以后用简体中文和你聊天。",
    "zh_TW": "好的，以後用繁體中文和你聊天。",
    "en": "Got it. I'll speak English with you from now on.",
}
_LANGUAGE_HELP = {
    "zh_CN": "可选语言：简体中文（语言 zh_CN）、繁體中文（语言 zh_TW）、English（语言 en）。",
    "zh_TW": "可選語言：简体中文（語言 zh_CN）、繁體中文（語言 zh_TW）、English（語言 en）。",
    "en": "Languages: 简体中文 (language zh_CN), 繁體中文 (language zh_TW), English (language en).",
}
_WEB_AUTHORIZATION_OFF = {
    "zh_CN": "这里暂时不能使用微信昵称。发送“叫我”加上名字告诉我怎么称呼你，例如：叫我小王",
    "zh_TW": "這裡暫時不能使用微信暱稱。發送「叫我」加上名字告訴我怎麼稱呼你，例如：叫我小王",
    "en": 'I can\'t use your WeChat name here. Send "call me" and a name, for example: call me Sam',
}
_NAMES_FORGOTTEN = {
    "zh_CN": "好的，我已经忘记你的昵称。",
    "zh_TW": "好的，我已經忘記你的暱稱。",
    "en": "Done: I've forgotten your name.",
}
_YOUR_NAME = {
    "zh_CN": "我现在叫你{name}。想换一个，发送“叫我”加上新名字；发送“忘记我的昵称”就不再用它。",
    "zh_TW": "我現在叫你{name}。想換一個，發送「叫我」加上新名字；發送「忘記我的暱稱」就不再用它。",
    "en": 'I call you {name}. To change it, send "call me" and a new name; '
    '"forget my name" drops it.',
}
_NO_NAME_YET = {
    "zh_CN": "我还不知道怎么称呼你。发送“叫我”加上名字，例如：叫我小王",
    "zh_TW": "我還不知道怎麼稱呼你。發送「叫我」加上名字，例如：叫我小王",
    "en": 'I don\'t know your name yet. Send "call me" and a name, for example: call me Sam',
}
_NOT_SAVED = {
    "zh_CN": "抱歉，现在没能保存你的设置，请稍后再试。",
    "zh_TW": "抱歉，現在沒能保存你的設定，請稍後再試。",
    "en": "Sorry, I couldn't save that just now. Please try again in a moment.",
}


@router.text(NAME_QUESTION)
async def tell_name(msg: Message, ctx: Context) -> str:
    """ "我叫什么？" / "what's my name?": the name the bot uses, and how to change it."""
    language = await ctx.language()
    name = await ctx.name()
    if name:
        return _YOUR_NAME[language].format(name=name)
    if ctx.config.web_authorization.enabled:
        link = consent_link(ctx.config, ctx.openid, language)
        return f"{_NO_NAME_YET[language]}\n{link}"
    return _NO_NAME_YET[language]


@router.text(NAME_STATEMENT)
async def set_name(msg: Message, ctx: Context) -> str | Skip:
    """ "叫我小王" / "我叫小王" / "以後叫我小王吧" / "call me Sam" / "I go by Sam": remember the
    name and confirm it; an ordinary sentence ("我叫了外卖", "call me back") is left alone."""
    loose = bool(ctx.match and ctx.match["loose"])
    name = spoken_name(ctx.match["name"] if ctx.match else "")
    if name is None or (loose and (not name or len(name) > MAX_NAME_LENGTH)):
        return SKIP  # the greeting (or a later handler) answers it
    language = await ctx.language()
    if not name:
        return _NAME_MISSING[language]
    if len(name) > MAX_NAME_LENGTH:
        return _NAME_TOO_LONG[language].format(max=MAX_NAME_LENGTH)
    try:
        await ctx.set_name(name)
    except StorageUnavailable:
        return _NOT_SAVED[language]
    return _CONFIRM_NAME[language].format(name=name)


@router.text(_WECHAT_NAME_COMMAND)
async def use_wechat_name(msg: Message, ctx: Context) -> str:
    """ "用微信昵称" / "use my WeChat name": the web-authorization link, any time."""
    language = await ctx.language()
    if not ctx.config.web_authorization.enabled:
        return _WEB_AUTHORIZATION_OFF[language]
    return consent_link(ctx.config, ctx.openid, language)


@router.text(_FORGET_NAME_COMMAND)
async def forget_name(msg: Message, ctx: Context) -> str:
    """ "忘记我的昵称" / "forget my name": delete the typed name and the authorized nickname."""
    language = await ctx.language()
    try:
        await ctx.forget_names()
    except StorageUnavailable:
        return _NOT_SAVED[language]
    return _NAMES_FORGOTTEN[language]


@router.text(_LANGUAGE_COMMAND)
async def set_language(msg: Message, ctx: Context) -> str | Skip:
    """ "language en" / "语言 英文" / "語言 繁體": remember the language and confirm in it."""
    value = ctx.match["value"] if ctx.match else ""
    chosen = normalize_language(value)
    if chosen is None:
        if len(value) > 16 or " " in value:
            return SKIP  # a sentence that merely starts with the word, e.g. "语言学很有趣"
        return _LANGUAGE_HELP[await ctx.language()]
    try:
        await ctx.set_language(chosen)
    except StorageUnavailable:
        return _NOT_SAVED[await ctx.language()]
    return _CONFIRM_LANGUAGE[chosen]


@router.event("subscribe")
async def welcome(msg: Message, ctx: Context) -> str:
    """A new follower: the greeting."""
    return await greeting_for(ctx)


@router.text()
async def greet(msg: Message, ctx: Context) -> str:
    """Any text no other handler took: the greeting."""
    return await greeting_for(ctx)


async def greeting_for(ctx: Context) -> str:
    """The configured greeting in the follower's language, with their name when known."""
    language = await ctx.language()
    templates = ctx.config.greeting(language)
    name = await ctx.name()
    account = ctx.config.account_name
    if name:
        return templates.with_name.format(name=name, account=account)
    greeting = templates.without_name.format(account=account)
    if ctx.config.web_authorization.enabled:
        link = consent_link(ctx.config, ctx.openid, language)
        return f"{greeting}\n{link}"
    return greeting
