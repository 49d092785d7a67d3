"""From a parsed message to a reply: pick the route, run the handler, contain its failures."""

from __future__ import annotations

import importlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from bot.config import ConfigError
from bot.routing.context import Context
from bot.routing.router import SKIP, Route, Router
from bot.wechat.messages import Message, UnsubscribeEvent
from bot.wechat.replies import ImageReply, MusicReply, Reply, TextReply, VideoReply, VoiceReply

log = logging.getLogger(__name__)


class Outcome(NamedTuple):
    """What handling one message came to."""

    reply: Reply | None
    handler: str | None  # the handler that answered (or raised)
    failed: bool = False
    extra: tuple[Reply, ...] = ()  # a list's replies after the first (customer-service API)


class Dispatcher:
    """Runs the first matching route; a raising handler is logged and answers nothing."""

    def __init__(
        self,
        routes: Sequence[Route],
        *,
        observe: Callable[[str, float, bool], None] | None = None,
    ) -> None:
        self._routes = tuple(routes)
        self._by_type: dict[str, tuple[Route, ...]] = {}
        self._observe = observe

    def _candidates(self, msg_type: str) -> tuple[Route, ...]:
        found = self._by_type.get(msg_type)
        if found is None:
            found = tuple(r for r in self._routes if r.msg_type in (None, msg_type))
            if len(self._by_type) < 256:  # bounded: msg_type comes from the request
                self._by_type[msg_type] = found
        return found

    def route_for(self, msg: Message) -> Route | None:
        """The first route matching `msg` (the one its handler runs in, unless it skips)."""
        return next((r for r in self._candidates(msg.msg_type) if r.match(msg) is not False), None)

    def handler_for(self, msg: Message) -> str | None:
        """The name of `route_for(msg)`'s handler (for log lines about a running message)."""
        route = self.route_for(msg)
        return route.name if route is not None else None

    async def dispatch(self, msg: Message, ctx: Context) -> Outcome:
        """Handle `msg`; never raises for a handler's failure."""
        if isinstance(msg, UnsubscribeEvent):
            await _forget(ctx)
        for route in self._candidates(msg.msg_type):
            matched = route.match(msg)
            if matched is False:
                continue
            ctx.match = matched if isinstance(matched, re.Match) else None
            started = time.perf_counter()
            try:
                result = await route.handler(msg, ctx)
            except Exception:
                self._note(route.name, started, True)
                log.exception(
                    "handler %s failed on message %s", route.name, msg.msg_id or msg.dedup_key
                )
                return Outcome(None, route.name, failed=True)
            self._note(route.name, started, False)
            if result is SKIP:
                continue
            if isinstance(result, str):
                return Outcome(TextReply(result) if result else None, route.name)
            if result is None:
                return Outcome(None, route.name)
            items = result if isinstance(result, list) else [result]
            replies: list[Reply] = []
            for item in items:
                reply: Reply = TextReply(item) if isinstance(item, str) else item  # type: ignore[assignment]
                if isinstance(reply, TextReply) and not reply.content:
                    continue
                if _names_a_file(reply):
                    try:
                        reply = await ctx.api.media_files.resolve(reply)
                    except Exception:
                        log.exception(
                            "handler %s: its reply's file could not be uploaded (message %s)",
                            route.name,
                            msg.msg_id or msg.dedup_key,
                        )
                        return Outcome(None, route.name, failed=True)
                replies.append(reply)
            if not replies:
                return Outcome(None, route.name)
            return Outcome(replies[0], route.name, extra=tuple(replies[1:]))
        return Outcome(None, None)

    def _note(self, name: str, started: float, failed: bool) -> None:
        if self._observe is not None:
            self._observe(name, time.perf_counter() - started, failed)


def _names_a_file(reply: Reply) -> bool:
    """A reply whose medium is a local file still to be uploaded (`ImageReply(file=...)`)."""
    if isinstance(reply, ImageReply | VoiceReply | VideoReply):
        return not reply.media_id
    return (
        isinstance(reply, MusicReply) and reply.thumb_file is not None and not reply.thumb_media_id
    )


async def _forget(ctx: Context) -> None:
    try:
        await ctx.followers.forget(ctx.openid)
        await ctx.profiles.forget(ctx.openid)
    except Exception:
        log.exception("could not delete the data of a follower who unfollowed")


def load_router(modules: Sequence[str]) -> Router:
    """Import handler modules and include each one's `router`, in the given order."""
    root = Router("app")
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError("handlers", f"cannot import {name!r}: {exc}") from None
        router = getattr(module, "router", None)
        if not isinstance(router, Router):
            raise ConfigError("handlers", f"module {name!r} has no `router = Router()`")
        root.include(router)
    return root
