"""`wechat-bot demo --web`: a local page that chats with the bot like a follower's phone does.

The page (``bot/emulator_page.html``, one self-contained file) talks to a small JSON API here;
every message and event it sends goes through the demo's `WeChatSimulator`, so each one is a
signed (and in safe mode encrypted) push over real HTTP to the running bot. Late replies, which
the bot sends through the customer-service API, are read back from the fake WeChat API.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
from collections.abc import Awaitable, Iterable, Mapping
from functools import partial
from importlib import resources
from typing import Any

import aiohttp
from aiohttp import web

from bot.config import Config
from bot.demo.session import DemoSession
from bot.testing.fake_wechat import DEMO_FOLLOWERS, FakeFollower
from bot.testing.simulator import BotReply
from bot.wechat.crypto import CryptoError

PAGE_RESOURCE = "emulator_page.html"
DEFAULT_ACCOUNT_NAME = "Official Account"
DEFAULT_MENU: dict[str, Any] = {
    "button": [
        {"type": "click", "name": "打招呼", "key": "MENU_HELLO"},
        {"type": "click", "name": "帮助", "key": "MENU_HELP"},
        {"type": "click", "name": "关于", "key": "MENU_ABOUT"},
    ]
}
EVENTS = frozenset({"subscribe", "unsubscribe", "CLICK", "VIEW"})
MAX_TEXT = 2048  # characters one message may carry; WeChat caps a text at about this
MAX_KEY = 1024  # a VIEW key is a URL of at most 1024 bytes on the platform
MAX_LATE = 100  # late messages one poll returns
SEND_TIMEOUT = 10.0  # seconds for one push: the bot must answer within WeChat's 5 s anyway
POLL_HINT_MS = 1500  # how often the page asks for late messages

_json_response = partial(web.json_response, dumps=partial(json.dumps, ensure_ascii=False))
# Inline script and style only; data goes to this origin alone, and no remote image is loaded.
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)


class BadRequest(Exception):
    """A request the emulator API refuses; becomes a JSON error with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# -- the menu -------------------------------------------------------------------------------


def configured_menu(config: Config | None) -> dict[str, Any] | None:
    """The account's default menu from `config.yaml`'s `menu:`, in the platform's shape."""
    if config is None or config.menu is None or config.menu.default is None:
        return None
    return config.menu.default.to_json()


def load_menu(config: Config | None = None) -> list[dict[str, Any]]:
    """The menu buttons for the page: the configured menu, else `DEFAULT_MENU`."""
    return normalize_menu(configured_menu(config) or DEFAULT_MENU)


def normalize_menu(menu: object) -> list[dict[str, Any]]:
    """A WeChat menu definition as the page's buttons: `{name, event, key}` or `{name, sub}`.

    `click` buttons send CLICK with their key, `view` buttons VIEW with their URL; other types
    (scan, photo, location, mini program) cannot be emulated and get `event: null`.
    Raises ValueError when `menu` is not shaped like `{"button": [...]}`.
    """
    if not isinstance(menu, Mapping) or not isinstance(menu.get("button"), list):
        raise ValueError('expected {"button": [...]}')
    return [_button(b, nested=False) for b in menu["button"]]


def _button(raw: object, *, nested: bool) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise ValueError("every button needs a name")
    name: str = raw["name"]
    sub = raw.get("sub_button")
    if isinstance(sub, list) and sub and not nested:
        return {"name": name, "sub": [_button(b, nested=True) for b in sub]}
    kind = raw.get("type")
    if kind == "click" and isinstance(raw.get("key"), str):
        return {"name": name, "event": "CLICK", "key": raw["key"]}
    if kind == "view" and isinstance(raw.get("url"), str):
        return {"name": name, "event": "VIEW", "key": raw["url"]}
    return {"name": name, "event": None, "key": None}


# -- what a follower sees -------------------------------------------------------------------


def reply_items(reply: BotReply) -> list[dict[str, Any]]:
    """A webhook answer as the bubbles a follower would see (none for `success`)."""
    if reply.status != 200:
        return [{"type": "error", "text": f"HTTP {reply.status}: {reply.body.strip()[:200]}"}]
    if reply.is_success:
        return []
    fields = reply.fields
    kind = reply.msg_type or ""
    item: dict[str, Any]
    if kind == "text":
        item = {"type": "text", "text": reply.content or ""}
    elif kind in ("image", "voice"):
        inner = fields.get(kind.capitalize())
        item = {"type": kind, "media_id": _get(inner, "MediaId")}
    elif kind == "video":
        inner = fields.get("Video")
        item = {"type": "video", "media_id": _get(inner, "MediaId"), "title": _get(inner, "Title")}
    elif kind == "music":
        item = {"type": "music", "title": _get(fields.get("Music"), "Title")}
    elif kind == "news":
        articles = fields.get("Articles")
        item = {
            "type": "news",
            "articles": [
                {
                    "title": _get(a, "Title"),
                    "description": _get(a, "Description"),
                    "pic_url": _get(a, "PicUrl"),
                    "url": _get(a, "Url"),
                }
                for a in (articles if isinstance(articles, list) else [])
            ],
        }
    elif kind == "transfer_customer_service":
        item = {"type": "transfer", "kf_account": _get(fields.get("TransInfo"), "KfAccount")}
    else:
        item = {"type": "other", "kind": kind}
    item["encrypted"] = reply.encrypted
    return [item]


def late_item(body: Mapping[str, Any]) -> dict[str, Any]:
    """A customer-service message (the JSON the bot posted) as the bubble a follower sees."""
    kind = str(body.get("msgtype", ""))
    content = body.get(kind)
    if kind == "text":
        return {"type": "text", "text": _get(content, "content")}
    if kind in ("image", "voice"):
        return {"type": kind, "media_id": _get(content, "media_id")}
    if kind == "video":
        return {
            "type": "video",
            "media_id": _get(content, "media_id"),
            "title": _get(content, "title"),
        }
    if kind == "music":
        return {"type": "music", "title": _get(content, "title")}
    if kind == "news":
        articles = content.get("articles") if isinstance(content, Mapping) else None
        return {
            "type": "news",
            "articles": [
                {
                    "title": _get(a, "title"),
                    "description": _get(a, "description"),
                    "pic_url": _get(a, "picurl"),
                    "url": _get(a, "url"),
                }
                for a in (articles if isinstance(articles, list) else [])
            ],
        }
    return {"type": "other", "kind": kind}


def _get(mapping: object, key: str) -> str:
    value = mapping.get(key) if isinstance(mapping, Mapping) else None
    return "" if value is None else str(value)


# -- the server -----------------------------------------------------------------------------


class Emulator:
    """The emulator's HTTP handlers around one running demo."""

    def __init__(
        self,
        demo: DemoSession,
        *,
        account_name: str = DEFAULT_ACCOUNT_NAME,
        menu: list[dict[str, Any]] | None = None,
        followers: Iterable[FakeFollower] = DEMO_FOLLOWERS,
    ) -> None:
        """Serve `demo`; `menu` is already normalized (see `normalize_menu`)."""
        self.demo = demo
        self.account_name = account_name
        self.menu = load_menu() if menu is None else menu
        self.followers = {f.openid: f for f in followers}
        self._page = resources.files("bot.demo").joinpath(PAGE_RESOURCE).read_bytes()

    def app(self) -> web.Application:
        """The aiohttp application: the page and its JSON API."""
        app = web.Application(client_max_size=64 * 1024)
        app.add_routes(
            [
                web.get("/", self.page),
                web.get("/api/config", self.config),
                web.get("/api/followers", self.list_followers),
                web.post("/api/send", self.send),
                web.post("/api/event", self.event),
                web.get("/api/late", self.late),
            ]
        )
        return app

    async def page(self, request: web.Request) -> web.StreamResponse:
        """GET /: the chat page."""
        return web.Response(
            body=self._page,
            content_type="text/html",
            charset="utf-8",
            headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store"},
        )

    async def config(self, request: web.Request) -> web.StreamResponse:
        """GET /api/config: account name, menu, default follower, poll interval."""
        return _json_response(
            {
                "account": self.account_name,
                "menu": self.menu,
                "openid": self.demo.openid,
                "poll_ms": POLL_HINT_MS,
            }
        )

    async def list_followers(self, request: web.Request) -> web.StreamResponse:
        """GET /api/followers: the demo followers the page can chat as."""
        return _json_response(
            {
                "followers": [
                    {
                        "openid": f.openid,
                        "nickname": f.nickname,
                        "remark": f.remark,
                        "subscribed": bool(f.subscribe),
                    }
                    for f in self.followers.values()
                ]
            }
        )

    async def send(self, request: web.Request) -> web.StreamResponse:
        """POST /api/send {"openid", "text"}: a text message; {"replies": [...]}."""
        try:
            body = await _json_object(request)
            openid = self._openid(body)
            text = body.get("text")
            if not isinstance(text, str) or not text.strip():
                raise BadRequest(400, "text must be a non-empty string")
            if len(text) > MAX_TEXT:
                raise BadRequest(400, f"text is longer than {MAX_TEXT} characters")
            reply = await self._push(self.demo.simulator.send_text(openid, text))
        except BadRequest as exc:
            return _json_response({"error": str(exc)}, status=exc.status)
        return _json_response({"replies": reply_items(reply)})

    async def event(self, request: web.Request) -> web.StreamResponse:
        """POST /api/event {"openid", "event", "key"}: follow, unfollow or a menu click."""
        try:
            body = await _json_object(request)
            openid = self._openid(body)
            event, key = body.get("event"), body.get("key")
            if event not in EVENTS:
                raise BadRequest(400, f"event must be one of {sorted(EVENTS)}")
            if key is not None and (not isinstance(key, str) or len(key) > MAX_KEY):
                raise BadRequest(400, f"key must be a string of at most {MAX_KEY} characters")
            if event in ("CLICK", "VIEW") and not key:
                raise BadRequest(400, f"a {event} event needs a key")
            if event == "subscribe":
                reply = await self._push(self.demo.simulator.follow(openid))
            else:
                reply = await self._push(self.demo.simulator.send_event(openid, event, key))
        except BadRequest as exc:
            return _json_response({"error": str(exc)}, status=exc.status)
        if reply.status == 200 and event in ("subscribe", "unsubscribe"):
            self._set_subscribed(openid, event == "subscribe")
        return _json_response({"replies": reply_items(reply)})

    async def late(self, request: web.Request) -> web.StreamResponse:
        """GET /api/late?openid=&since=: customer-service messages sent after index `since`."""
        openid = request.query.get("openid", "")
        if openid not in self.followers:
            return _json_response({"error": "unknown follower"}, status=404)
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return _json_response({"error": "since must be an integer"}, status=400)
        sent = self.demo.fake.sent
        if since < 0 or since > len(sent):
            since = 0  # the fake was reset (or trimmed): everything it holds is new to the page
        messages = [
            {"index": i, **late_item(body)}
            for i, body in enumerate(sent[since:], start=since)
            if isinstance(body, Mapping) and body.get("touser") == openid
        ]
        return _json_response({"messages": messages[:MAX_LATE], "next": len(sent)})

    def _openid(self, body: Mapping[str, Any]) -> str:
        openid = body.get("openid")
        if not isinstance(openid, str) or not openid:
            raise BadRequest(400, "openid must be a non-empty string")
        if openid not in self.followers:
            raise BadRequest(404, f"unknown follower {openid!r}")
        return openid

    def _set_subscribed(self, openid: str, subscribed: bool) -> None:
        """Keep the fake platform's view in step, so late sends to a leaver fail as they would."""
        follower = dataclasses.replace(self.followers[openid], subscribe=int(subscribed))
        self.followers[openid] = follower
        self.demo.fake.add_follower(follower)

    async def _push(self, push: Awaitable[BotReply]) -> BotReply:
        """Await one simulator push; transport failures become a 502 for the page."""
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                return await push
        except TimeoutError as exc:
            raise BadRequest(504, f"the bot did not answer within {SEND_TIMEOUT:g} s") from exc
        except aiohttp.ClientError as exc:
            raise BadRequest(502, f"cannot reach the bot: {exc or type(exc).__name__}") from exc
        except (ValueError, CryptoError) as exc:
            raise BadRequest(502, f"unreadable answer from the bot: {exc}") from exc


async def _json_object(request: web.Request) -> dict[str, Any]:
    # JSON only: a cross-site form post cannot send this type without a CORS preflight.
    if request.content_type != "application/json":
        raise BadRequest(415, "send application/json")
    try:
        body = json.loads(await request.read())
    except web.HTTPRequestEntityTooLarge as exc:
        raise BadRequest(413, "request body too large") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise BadRequest(400, "body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest(400, "body must be a JSON object")
    return body


def create_emulator_app(
    demo: DemoSession,
    *,
    account_name: str | None = None,
    menu: Mapping[str, Any] | None = None,
) -> web.Application:
    """The emulator app for `demo`; `menu` is a WeChat menu (default: `load_menu()`)."""
    emulator = Emulator(
        demo,
        account_name=account_name or DEFAULT_ACCOUNT_NAME,
        menu=None if menu is None else normalize_menu(menu),
    )
    return emulator.app()


async def start_emulator(
    demo: DemoSession,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    account_name: str | None = None,
    menu: Mapping[str, Any] | None = None,
) -> tuple[web.AppRunner, str]:
    """Serve the emulator on host:port (0: a free port); returns the runner and the page URL.

    Stop it with `await runner.cleanup()`.
    """
    app = create_emulator_app(demo, account_name=account_name, menu=menu)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{url_host}:{bound_port}/"


async def serve_emulator(
    demo: DemoSession,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    stop: asyncio.Event | None = None,
    account_name: str | None = None,
    menu: Mapping[str, Any] | None = None,
) -> int:
    """Serve the chat page until Ctrl-C (or until `stop` is set); returns the exit code 0."""
    runner, url = await start_emulator(demo, host, port, account_name=account_name, menu=menu)
    loop = asyncio.get_running_loop()
    own_stop = stop is None
    done = asyncio.Event() if stop is None else stop
    if own_stop:
        # Ctrl-C ends the wait and the page is shut down cleanly, not torn down by cancellation.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, done.set)
    print(f"Chat emulator on {url} — open it in a browser; Ctrl-C to stop.", flush=True)
    try:
        await done.wait()
    finally:
        if own_stop:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGINT)
        await runner.cleanup()
    return 0
