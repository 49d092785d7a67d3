"""The link the chat offers: the platform's authorize URL for scope `snsapi_userinfo`."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote

from bot.config import Config
from bot.webauth.state import StateSigner

AUTHORIZE_PATH = "/connect/oauth2/authorize"


def authorize_url(config: Config, state: str) -> str:
    """The URL that asks the follower's consent and comes back with `state` (pure, no I/O)."""
    section = config.web_authorization
    base = section.oauth_base_url.rstrip("/")
    return (
        f"{base}{AUTHORIZE_PATH}?appid={quote(config.app_id, safe='')}"
        f"&redirect_uri={quote(section.redirect_uri, safe='')}&response_type=code"
        f"&scope=snsapi_userinfo&state={state}#wechat_redirect"
    )


def signer_for(config: Config) -> StateSigner:
    """The state signer of this account (the same key on every instance)."""
    return _signer(config.app_id, config.app_secret, config.web_authorization.state_ttl)


@lru_cache(maxsize=8)
def _signer(app_id: str, app_secret: str, ttl: float) -> StateSigner:
    return StateSigner(app_id, app_secret, ttl)


def consent_link(config: Config, openid: str, language: str) -> str:
    """The chat's one-line link (an `<a>` WeChat shows as a tappable text) for `openid`, whose
    pages will speak `language`; pure CPU, no storage (the state is signed, not stored)."""
    url = authorize_url(config, signer_for(config).issue(openid, language))
    return f'<a href="{url}">{config.web_authorization.text_of_link(language)}</a>'
