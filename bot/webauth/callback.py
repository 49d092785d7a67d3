"""`GET /oauth/callback?code&state`: where the platform sends the follower after consent.

The order matters: the state is verified first (forged or expired: nothing else happens), then
claimed in the store (a replay is refused), then the code is exchanged once, and the nickname is
stored for the openid the *platform* returned, only when the state was issued for that openid.
Every refusal is a page in the follower's language and a log line without codes, tokens or
names; nothing a request carries can produce a 500.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from bot.config import Config
from bot.followers.store import FollowerStore
from bot.storage.base import Storage, StorageUnavailable
from bot.webauth import pages
from bot.webauth.client import UNREACHABLE, OAuthClient, OAuthError
from bot.webauth.links import signer_for
from bot.webauth.settings import CALLBACK_PATH
from bot.webauth.state import StateRefused, StateSigner

log = logging.getLogger(__name__)

_CODE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_USED_PREFIX = "webauth:state:"
_CLAIM_SLACK = 5.0  # seconds a claimed nonce outlives its state, for clock skew between instances
_USERINFO_LANG = {"zh_CN": "zh_CN", "zh_TW": "zh_TW", "en": "en"}


@dataclass(frozen=True, slots=True)
class WebAuthorizationService:
    """What the callback works with: the signer, the client and the bot's own stores."""

    config: Config
    signer: StateSigner
    client: OAuthClient
    storage: Storage
    followers: FollowerStore


WEB_AUTHORIZATION = web.AppKey("web_authorization", WebAuthorizationService)
Stores = Callable[[web.Application], tuple[Storage, FollowerStore]]
"""How the callback finds the webhook's store once the app has started (`bot.webhook.app`)."""


def add_web_authorization(app: web.Application, config: Config, stores: Stores) -> None:
    """Serve the callback on `app` (when `web_authorization.enabled`), with its own session;
    `stores` is called at start-up, after the webhook's services opened."""
    if not config.web_authorization.enabled:
        return

    async def service(app: web.Application) -> AsyncIterator[None]:
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=config.api_timeout),
            connector=aiohttp.TCPConnector(limit=20, ttl_dns_cache=300),
        )
        client = OAuthClient(
            session,
            app_id=config.app_id,
            app_secret=config.app_secret,
            base_url=config.api_base_url,
            timeout=config.api_timeout,
        )
        storage, followers = stores(app)
        app[WEB_AUTHORIZATION] = WebAuthorizationService(
            config, signer_for(config), client, storage, followers
        )
        try:
            yield
        finally:
            await session.close()

    app.cleanup_ctx.append(service)
    app.router.add_get(CALLBACK_PATH, oauth_callback)


async def oauth_callback(request: web.Request) -> web.Response:
    """Verify the state, exchange the code, store the nickname; a page either way."""
    flow = request.app[WEB_AUTHORIZATION]
    account = flow.config.account_name
    language = flow.config.default_language

    def page(status: int, text: pages.PageText, name: str = "") -> web.Response:
        return pages.page_response(status, text, language, account, name)

    query = request.query
    try:
        state = flow.signer.verify(query.get("state", ""))
    except StateRefused as exc:
        log.warning("web authorization: callback refused: %s state", exc.reason)
        language = exc.language or language
        return page(400, pages.EXPIRED if exc.reason == "expired" else pages.INVALID)
    language = state.language
    code = query.get("code", "")
    if not code:
        log.info("web authorization: the follower declined consent; nothing stored")
        return page(200, pages.DECLINED)
    if not _CODE.fullmatch(code):
        log.warning("web authorization: callback refused: malformed code")
        return page(400, pages.INVALID)
    try:
        ttl = max(1.0, state.expires_at - time.time() + _CLAIM_SLACK)
        fresh = await flow.storage.add(_USED_PREFIX + state.nonce, b"1", ttl)
    except StorageUnavailable:
        log.warning("web authorization: the store is unavailable; nothing stored")
        return page(503, pages.UNAVAILABLE)
    if not fresh:
        log.warning("web authorization: callback refused: state already used")
        return page(400, pages.USED)
    try:
        grant = await flow.client.exchange(code)
    except OAuthError as exc:
        log.warning("web authorization: code exchange failed: errcode %d", exc.errcode)
        if exc.errcode == UNREACHABLE:
            return page(502, pages.UNAVAILABLE)
        return page(400, pages.PLATFORM_REFUSED)
    if grant.snapshot_user:
        log.info("web authorization: a snapshot-page user (virtual identity); nothing stored")
        return page(200, pages.SNAPSHOT)
    if not flow.signer.bound_to(state, grant.openid):
        log.warning(
            "web authorization: refused: the platform's openid is not the one the link was for"
        )
        return page(403, pages.MISMATCH)
    try:
        nickname = await flow.client.nickname(grant, _USERINFO_LANG.get(language, "zh_CN"))
    except OAuthError as exc:
        log.warning("web authorization: sns/userinfo failed: errcode %d", exc.errcode)
        return page(502, pages.UNAVAILABLE)
    openid = grant.openid  # the platform's, never the state's alone
    del grant  # the web-authorization token is used once and never kept
    if not nickname:
        log.info("web authorization: sns/userinfo gave no nickname; nothing stored")
        return page(200, pages.NO_NICKNAME)
    try:
        await flow.followers.set_wechat_name(openid, nickname)
    except StorageUnavailable:
        log.warning("web authorization: the store is unavailable; nothing stored")
        return page(503, pages.UNAVAILABLE)
    log.info("web authorization: a follower shared their WeChat nickname")
    log.debug("web authorization: nickname stored for %s", openid)
    return page(200, pages.STORED, nickname)
