"""The greeting's languages: which one a follower writes in, and which one they name.

The greeting picks its language as: the language the follower chose (``normalize_language`` of what
they typed) > the script of their text when unambiguous (``detect_language``) > the profile's
language > the configured default. This module answers the first two; callers apply the order.
"""

from __future__ import annotations

import unicodedata

from bot.followers.hanzi_tables import SIMPLIFIED_ONLY, TRADITIONAL_ONLY

LANGUAGES: tuple[str, ...] = ("zh_CN", "zh_TW", "en")
"""The language codes the greeting speaks, spelled as the WeChat user-info API spells them."""


def _is_han(code: int) -> bool:
    """Whether a code point is a Han ideograph (basic block, extensions, compatibility forms)."""
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x3FFFF
        or 0xF900 <= code <= 0xFAFF
    )


def _is_latin(code: int) -> bool:
    """Whether a non-ASCII letter is Latin (accented, extended, ligature or full-width forms)."""
    return (
        code < 0x0250
        or 0x1E00 <= code <= 0x1EFF
        or 0xFB00 <= code <= 0xFB06
        or 0xFF21 <= code <= 0xFF3A
        or 0xFF41 <= code <= 0xFF5A
    )


def detect_language(text: str) -> str | None:
    """Guess the language from the script ``text`` is written in, or ``None`` when unsure.

    Han characters decide when present: only Simplified-only characters → ``"zh_CN"``, only
    Traditional-only characters → ``"zh_TW"``; both, or only characters common to both scripts
    (``"你好"``) → ``None``. Without Han characters, text with at least one ASCII letter and no
    letter of another script → ``"en"``. Digits, punctuation, symbols and emoji are ignored, so
    text made only of them → ``None``.
    """
    simplified = traditional = han = ascii_letter = foreign_letter = False
    for char in text:
        if char < "\x80":
            # ASCII first: English text never reaches the set lookups
            if not ascii_letter and char.isalpha():
                ascii_letter = True
        elif char in SIMPLIFIED_ONLY:
            if traditional:
                return None  # both scripts seen: nothing later can make it unambiguous
            simplified = True
        elif char in TRADITIONAL_ONLY:
            if simplified:
                return None
            traditional = True
        elif char.isalpha():
            code = ord(char)
            if _is_han(code):
                han = True
            elif not _is_latin(code):
                foreign_letter = True
    if simplified:
        return "zh_CN"
    if traditional:
        return "zh_TW"
    if han or foreign_letter or not ascii_letter:
        return None
    return "en"


_ALIASES: dict[str, str] = {
    **dict.fromkeys(
        ("en", "eng", "en_us", "en_gb", "english", "英文", "英语", "英語"),
        "en",
    ),
    **dict.fromkeys(
        (
            "zh_cn", "zh", "zh_hans", "zh_hans_cn", "zh_sg", "cn", "chinese", "simplifiedchinese",
            "中文", "普通话", "简体", "简体中文", "简体字", "简中", "簡體", "簡體中文",
        ),
        "zh_CN",
    ),
    **dict.fromkeys(
        (
            "zh_tw", "zh_hant", "zh_hant_tw", "zh_hk", "zh_hant_hk", "zh_mo", "tw", "hk",
            "traditionalchinese", "繁體", "繁体", "繁體中文", "繁体中文", "繁體字", "繁体字",
            "繁中", "正體", "正体", "正體中文", "正体中文",
        ),
        "zh_TW",
    ),
}  # fmt: skip

# Longer than any alias: answer junk without normalising a whole message
_MAX_ALIAS_LENGTH = 32
# Punctuation a follower may wrap a language name in ("English.", "「繁體」")
_EDGE_PUNCTUATION = " .,;:!?'\"()[]<>。，、；：「」『』《》〈〉"


def normalize_language(value: str) -> str | None:
    """Map a language name a follower typed to a code of ``LANGUAGES``, or ``None``.

    Case, width (full-width ``ＥＮ``), spaces, ``-`` versus ``_`` and surrounding punctuation do not
    matter: ``"zh-cn"``, ``"Simplified Chinese"``, ``"简体中文"`` → ``"zh_CN"``; ``"zh-Hant"``,
    ``"繁體"``, ``"HK"`` → ``"zh_TW"``; ``"English"``, ``"英文"`` → ``"en"``.
    """
    value = value.strip()
    if len(value) > _MAX_ALIAS_LENGTH:
        return None
    folded = unicodedata.normalize("NFKC", value).casefold()
    key = "".join(folded.split()).replace("-", "_").strip(_EDGE_PUNCTUATION)
    return _ALIASES.get(key)
