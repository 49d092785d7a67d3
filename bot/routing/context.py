"""What a handler gets beside the message: the API, the follower, the match, the config."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from bot.client.api import UserInfo, WeChatAPI
from bot.client.profiles import ProfileCache
from bot.config import LANGUAGES, Config
from bot.followers.language import detect_language
from bot.followers.store import FollowerState, FollowerStore, Preferences
from bot.wechat.messages import Message, text_of


@dataclass(slots=True)
class Context:
    """Per-message context; everything is fetched lazily and at most once."""

    msg: Message
    config: Config
    api: WeChatAPI
    followers: FollowerStore
    profiles: ProfileCache
    match: re.Match[str] | None = None
    _prefs: Preferences | None = field(default=None, repr=False)
    _profile: UserInfo | None = field(default=None, repr=False)
    _profile_loaded: bool = field(default=False, repr=False)

    @property
    def openid(self) -> str:
        """The follower's OpenID."""
        return self.msg.from_user

    @property
    def text(self) -> str:
        """The message's text: Content, or a voice message's Recognition, else ""."""
        return text_of(self.msg)

    @property
    def state(self) -> FollowerState:
        """Handlers' own per-follower key-value state (shared across instances with Redis)."""
        return self.followers.state(self.openid)

    async def profile(self) -> UserInfo | None:
        """The follower's `user/info` profile, or None when unavailable in time."""
        if not self._profile_loaded:
            hit, profile = self.profiles.cached(self.openid)
            self._profile = profile if hit else await self.profiles.get(self.openid)
            self._profile_loaded = True
        return self._profile

    async def preferences(self) -> Preferences:
        """What the follower told the bot (name, language)."""
        if self._prefs is None:
            cached = self.followers.cached_preferences(self.openid)
            self._prefs = cached or await self.followers.preferences(self.openid)
        return self._prefs

    async def set_name(self, name: str) -> None:
        """Store the follower's name (raises StorageUnavailable when it cannot be stored)."""
        await self.followers.set_name(self.openid, name)
        self._prefs = replace(await self.preferences(), name=name)

    async def set_language(self, language: str) -> None:
        """Store the follower's language (raises StorageUnavailable when it cannot be stored)."""
        await self.followers.set_language(self.openid, language)
        self._prefs = replace(await self.preferences(), language=language)

    async def forget_names(self) -> None:
        """Delete the typed name and the authorized nickname (raises StorageUnavailable)."""
        await self.followers.forget_names(self.openid)
        self._prefs = replace(await self.preferences(), name=None, wechat_name=None)

    async def name(self) -> str | None:
        """How to call the follower: their own choice > the nickname they shared by web
        authorization > profile nickname > operator's remark."""
        prefs = await self.preferences()
        chosen = (prefs.name or "").strip() or (prefs.wechat_name or "").strip()
        if chosen:
            return chosen
        profile = await self.profile()
        if profile is not None:
            return profile.nickname.strip() or profile.remark.strip() or None
        return None

    async def language(self) -> str:
        """The follower's language: their choice > the script they write in > profile > default."""
        chosen = (await self.preferences()).language
        if chosen in LANGUAGES:
            return chosen
        detected = detect_language(self.text)
        if detected is not None:
            return detected
        profile = await self.profile()
        # Since 2021 `language` is a constant "zh_CN" beside an empty nickname: trust it only
        # where the platform still returns real profile data.
        if profile is not None and profile.nickname and profile.language:
            from_profile = _PROFILE_LANGUAGES.get(profile.language.replace("-", "_").lower())
            if from_profile is not None:
                return from_profile
        return self.config.default_language


_PROFILE_LANGUAGES = {
    "zh_cn": "zh_CN",
    "zh_tw": "zh_TW",
    "zh_hk": "zh_TW",
    "zh_mo": "zh_TW",
    "en": "en",
    "en_us": "en",
    "en_gb": "en",
}
