"""How followers say their name ("叫我小王", "以後叫我小王吧", "I go by Sam") and ask for it.

`NAME_STATEMENT` finds the form; `spoken_name` trims politeness and punctuation and tells an
ordinary sentence ("我叫了外卖", "叫我干嘛", "call me back", "call me when you can") from a name.
"""

from __future__ import annotations

import re

# 叫我X with the ways people lead into it: 请/請, 你可以, 以后/以後, 就, 那, 大家都 …
_CALL_ME_ZH = r"(?:(?:你|您|以后|以後|就|可以|请|請|那|都|大家)\s*){0,5}叫我"
NAME_STATEMENT = re.compile(
    r"^\s*(?:"
    rf"(?P<explicit>{_CALL_ME_ZH}|(?:please\s+)?call\s+me|my\s+name\s+is)"
    r"|(?P<loose>我叫|我的名字(?:是|叫)|我名字(?:是|叫)|my\s+name['’]s|i\s+go\s+by"
    r"|i['’]m\s+called|people\s+call\s+me|you\s+can\s+call\s+me|just\s+call\s+me)"
    r")\s*[:：]?\s*(?P<name>.*?)\s*$",
    re.IGNORECASE | re.DOTALL,
)
NAME_QUESTION = re.compile(
    r"^\s*(?:"
    r"我(?:叫|的名字是|名字是)(?:什么|什麼|啥)(?:名字)?(?:来着|來著)?(?:呀|啊|呢)?"
    r"|你(?:叫|怎么称呼|怎麼稱呼)我(?:什么|什麼|啥)?(?:呀|啊|呢)?"
    r"|(?:what['’]?s|what\s+is)\s+my\s+name(?:\s+again)?"
    r"|what\s+do\s+you\s+call\s+me"
    r")\s*[?？!！.。]*\s*$",
    re.IGNORECASE,
)

# Punctuation a follower may put around a name: "叫我「小王」！", "call me Sam."
_TRIM = "\"'“”‘’「」『』《》()（）[]【】.,!?;:。，！？；：~～…·- \t\r\n"
_ZH_TAIL = re.compile(
    r"(?:就好了?|就行了?|就可以了?|好了|吧|哦|喔|啦|呀|嘛|呢|哈)+$"
    r"|(?:[，,\s]*(?:谢谢你?|謝謝你?|谢啦|謝啦|多谢|多謝))+$"
)
_EN_TAIL = re.compile(
    r"(?:[,\s]+(?:please|thanks|thank\s+you|from\s+now\s+on|ok|okay))+$", re.IGNORECASE
)
_EN_HEAD = re.compile(r"^(?:please[,\s]+)", re.IGNORECASE)
# What follows 叫我 / 我叫 / call me in an ordinary sentence rather than a name
_ZH_NOT_A_NAME = re.compile(
    r"^(?:了|过|過|着|著|他|她|它|你|您|人|车|車|外卖|外賣|起床|起来|起來|吃饭|吃飯|一声|一聲"
    r"|过来|過來|过去|過去|回来|回來|回家|出来|出來|出去|去|来|來|做|干|幹|怎么|怎麼)"
    r"|什么|什麼|干嘛|幹嘛|啥|谁|誰|吗|嗎|为什么|為什麼"
)
_EN_NOT_A_NAME = frozenset(
    (
        "back", "when", "whenever", "later", "tomorrow", "tonight", "today", "now", "soon",
        "sometime", "anytime", "again", "asap", "at", "on", "in", "after", "before", "if",
        "once", "maybe", "up", "a", "an", "the", "by", "so", "or", "and", "to", "it", "what",
        "why", "how", "please", "this", "that",
    )
)  # fmt: skip
MAX_WORDS = 4  # "call me Mary Ann Smith" is a name; a longer run is a sentence


def spoken_name(raw: str) -> str | None:
    """The name in what followed the form: trimmed ("" when nothing), or None when the rest
    reads as an ordinary sentence rather than a name."""
    name = " ".join(raw.strip(_TRIM).split())
    for _ in range(3):  # "叫我老王就行，谢谢" → 老王: tails may stack
        trimmed = _EN_TAIL.sub("", _ZH_TAIL.sub("", name)).strip(_TRIM)
        trimmed = _EN_HEAD.sub("", trimmed).strip(_TRIM)
        if trimmed == name:
            break
        name = trimmed
    if not name:
        return ""
    if _ZH_NOT_A_NAME.search(name) or any(c in name for c in "?？"):
        return None
    words = name.split()
    if words[0].casefold() in _EN_NOT_A_NAME or len(words) > MAX_WORDS:
        return None
    return name
