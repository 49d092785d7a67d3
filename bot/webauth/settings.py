"""The `web_authorization:` section of the configuration: its fields, parsing and checks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

LINK_LANGUAGES = ("zh_CN", "zh_TW", "en")

DEFAULT_LINK_TEXT: dict[str, str] = {
    "zh_CN": "点这里，让我用你的微信昵称称呼你",
    "zh_TW": "點這裡，讓我用你的微信暱稱稱呼你",
    "en": "Tap here to let me call you by your WeChat name",
}
CALLBACK_PATH = "/oauth/callback"
"""Where the platform sends the follower back (`public_url` + this path is the redirect URI)."""

MIN_STATE_TTL = 60.0
MAX_STATE_TTL = 3600.0
MAX_LINK_TEXT = 64


class WebAuthorizationError(Exception):
    """An invalid `web_authorization` setting: `key` (dotted) and what is wrong."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def _setting(doc: str, env: str | None = None) -> dict[str, Any]:
    return {"doc": doc, "env": env, "secret": False}


@dataclass(frozen=True, slots=True)
class WebAuthorization:
    """Web authorization settings (`web_authorization:` in config.yaml)."""

    enabled: bool = field(
        default=False,
        metadata=_setting(
            "Offer followers with no known name a link to share their WeChat nickname "
            "(verified service accounts only).",
            "BOT_WEB_AUTHORIZATION",
        ),
    )
    public_url: str = field(
        default="",
        metadata=_setting(
            "The bot's public https base URL; its domain must be the account's 网页授权域名 "
            f"(the redirect URI is this + `{CALLBACK_PATH}`).",
            "BOT_PUBLIC_URL",
        ),
    )
    oauth_base_url: str = field(
        default="https://open.weixin.qq.com",
        metadata=_setting(
            "Where the platform's authorize page lives (point it at the fake API for tests).",
            "WECHAT_OAUTH_BASE_URL",
        ),
    )
    state_ttl: float = field(
        default=600.0,
        metadata=_setting(
            f"Seconds a link stays valid ({MIN_STATE_TTL:g} to {MAX_STATE_TTL:g}); "
            "each link works once."
        ),
    )
    link_text: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_LINK_TEXT),
        metadata=_setting("Per language: the text of the link the chat shows."),
    )

    @property
    def redirect_uri(self) -> str:
        """The URI the platform redirects to after consent."""
        return self.public_url.rstrip("/") + CALLBACK_PATH

    def text_of_link(self, language: str) -> str:
        """The link's text in `language` (the default text where none is configured)."""
        return (
            self.link_text.get(language)
            or DEFAULT_LINK_TEXT.get(language)
            or DEFAULT_LINK_TEXT["en"]
        )


SUB_FIELDS = {f.name: f for f in fields(WebAuthorization)}


def parse_web_authorization(raw: object, base: WebAuthorization | None = None) -> WebAuthorization:
    """The section from YAML (a mapping), over `base`; raises WebAuthorizationError."""
    if isinstance(raw, WebAuthorization):
        return raw
    if raw is None:
        return base or WebAuthorization()
    if not isinstance(raw, Mapping):
        raise WebAuthorizationError("web_authorization", "must be a mapping of settings")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in SUB_FIELDS:
            raise WebAuthorizationError(f"web_authorization.{key}", "unknown setting")
        values[str(key)] = coerce_sub_setting(str(key), value)
    return replace(base or WebAuthorization(), **values)


def coerce_sub_setting(key: str, raw: Any) -> Any:
    """One sub-setting from YAML or the environment, as its field's type."""
    name = f"web_authorization.{key}"
    if key == "enabled":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise WebAuthorizationError(name, f"must be true or false, not {raw!r}")
    if key == "state_ttl":
        if isinstance(raw, bool):
            raise WebAuthorizationError(name, f"must be a number, not {raw!r}")
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise WebAuthorizationError(name, f"must be a number, not {raw!r}") from None
        if not math.isfinite(number):
            raise WebAuthorizationError(name, f"must be a finite number, not {raw!r}")
        return number
    if key == "link_text":
        if not isinstance(raw, Mapping):
            raise WebAuthorizationError(name, "must map languages to a text")
        texts = dict(DEFAULT_LINK_TEXT)
        for lang, text in raw.items():
            if lang not in LINK_LANGUAGES:
                raise WebAuthorizationError(
                    f"{name}.{lang}", f"unknown language (use {', '.join(LINK_LANGUAGES)})"
                )
            if not isinstance(text, str) or not text.strip():
                raise WebAuthorizationError(f"{name}.{lang}", "must be a non-empty string")
            texts[lang] = text.strip()
        return texts
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise WebAuthorizationError(name, "must be a string")
    return raw.strip()


def validate_web_authorization(section: WebAuthorization) -> None:
    """Raise WebAuthorizationError for the first invalid sub-setting."""
    base = urlsplit(section.oauth_base_url)
    if base.scheme not in ("http", "https") or not base.hostname:
        raise WebAuthorizationError(
            "web_authorization.oauth_base_url", "must be an http:// or https:// URL"
        )
    if not MIN_STATE_TTL <= section.state_ttl <= MAX_STATE_TTL:
        raise WebAuthorizationError(
            "web_authorization.state_ttl",
            f"must be between {MIN_STATE_TTL:g} and {MAX_STATE_TTL:g} seconds",
        )
    for lang, text in section.link_text.items():
        if len(text) > MAX_LINK_TEXT or any(c in text for c in '<>"\n\r'):
            raise WebAuthorizationError(
                f"web_authorization.link_text.{lang}",
                f'at most {MAX_LINK_TEXT} characters, without < > " or line breaks',
            )
    if section.public_url:
        url = urlsplit(section.public_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise WebAuthorizationError(
                "web_authorization.public_url",
                "must be an https:// URL such as https://bot.example.com",
            )
        if url.query or url.fragment or url.username:
            raise WebAuthorizationError(
                "web_authorization.public_url",
                "must be a base URL without query, fragment or login",
            )
    elif section.enabled:
        raise WebAuthorizationError(
            "web_authorization.public_url",
            "missing: web authorization needs the bot's public https URL (set BOT_PUBLIC_URL)",
        )
