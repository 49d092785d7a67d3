"""The handler registry: decorators per kind of message, first match answers.

    router = Router()

    @router.text(re.compile(r"^weather (\\w+)$"))
    async def weather(msg: Message, ctx: Context) -> str:
        return f"Sunny in {ctx.match[1]}" if ctx.match else "?"

Routes are tried in registration order (an included router's routes stand where it was
included); a handler returns `SKIP` to let the next matching route try.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

from bot.wechat.messages import ClickEvent, Event, Message, ScanEvent, ViewEvent, text_of

if TYPE_CHECKING:
    from bot.routing.context import Context
    from bot.wechat.replies import Reply


class Skip:
    """The type of `SKIP`."""

    _instance: Skip | None = None

    def __new__(cls) -> Skip:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SKIP"


SKIP: Final = Skip()
"""Returned by a handler to pass the message on to the next matching route."""

# the classes of the events a menu's buttons send, for `Route.answers_event`
_EVENT_CLASSES: dict[str, type[Event]] = {"click": ClickEvent, "view": ViewEvent, "scan": ScanEvent}

HandlerResult: TypeAlias = "str | Reply | list[str | Reply] | Skip | None"
"""A list: the first is the passive reply, the rest go through the customer-service API."""
Handler: TypeAlias = Callable[["Message", "Context"], Awaitable[HandlerResult]]
Filter: TypeAlias = Callable[[Message], bool]
Matcher: TypeAlias = Callable[[Message], "re.Match[str] | bool"]


@dataclass(frozen=True, slots=True)
class Route:
    """One registered handler with what it matches."""

    handler: Handler
    msg_type: str | None  # None: any type
    matcher: Matcher | None
    filters: tuple[Filter, ...]
    name: str = ""  # the handler's qualified name, for logs and metrics
    event: str | None = None  # for `router.event` routes: the event name, lower-cased
    event_key: str | None = None  # and the EventKey it asked for (None: any)
    message_class: type[Message] | None = None  # for `router.message(SomeClass)` routes
    rerun: bool = True  # after a crash its unfinished messages run again (False: side effects)

    def answers_event(self, event: str, key: str) -> bool:
        """Whether this route is registered for event `event` with EventKey `key`: that
        event and key, that event with any key, its class of message, every event, or every
        message."""
        if self.event is not None:
            return self.event == event.lower() and self.event_key in (None, key)
        if self.message_class is not None:
            built = _EVENT_CLASSES.get(event.lower(), Event)
            return not self.filters and issubclass(built, self.message_class)
        return self.matcher is None and not self.filters and self.msg_type in (None, "event")

    def __post_init__(self) -> None:
        if not self.name:
            module = getattr(self.handler, "__module__", "")
            qualname = getattr(self.handler, "__qualname__", repr(self.handler))
            object.__setattr__(self, "name", f"{module}.{qualname}" if module else qualname)

    def match(self, msg: Message) -> re.Match[str] | bool:
        """A regex match, True, or False when the route does not apply."""
        if self.msg_type is not None and msg.msg_type != self.msg_type:
            return False
        result: re.Match[str] | bool = True
        if self.matcher is not None:
            result = self.matcher(msg)
            if result is False or result is None:
                return False
        for check in self.filters:
            if not check(msg):
                return False
        return result


class Router:
    """A registry of handlers; include routers into routers to compose an application."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._entries: list[Route | Router] = []

    def text(
        self, pattern: str | re.Pattern[str] | None = None, *filters: Filter, rerun: bool = True
    ) -> Callable[[Handler], Handler]:
        """Text messages: an exact string (surrounding spaces ignored), a compiled regex
        (searched; the match reaches the handler as `ctx.match`), or None for any text.

        `rerun=False` (on every decorator): the handler must not run twice (side effects), so
        a message it had not finished when the bot crashed is dropped, not run again."""
        return self._register("text", _text_matcher(pattern), filters, rerun=rerun)

    def event(
        self, name: str, key: str | None = None, *filters: Filter, rerun: bool = True
    ) -> Callable[[Handler], Handler]:
        """Events by name, case-insensitively (`subscribe`, `SCAN`, `CLICK`, …), optionally
        by exact `EventKey`."""
        wanted = name.lower()

        def matches(msg: Message) -> bool:
            if not isinstance(msg, Event) or msg.event != wanted:
                return False
            return key is None or msg.event_key == key

        return self._register("event", matches, filters, wanted, key, rerun=rerun)

    def message(
        self, msg_type: str | type[Message] | None = None, *filters: Filter, rerun: bool = True
    ) -> Callable[[Handler], Handler]:
        """Any message of a `MsgType` name (`image`, `location`, …) or class; None for all."""
        if isinstance(msg_type, type):
            cls = msg_type
            return self._register(
                None, lambda m: isinstance(m, cls), filters, message_class=cls, rerun=rerun
            )
        return self._register(msg_type.lower() if msg_type else None, None, filters, rerun=rerun)

    def include(self, other: Router) -> None:
        """Add another router's routes here, at this point in the priority order."""
        if other is self or self in other._included():
            raise ValueError("a router cannot include itself, directly or through others")
        self._entries.append(other)

    def _included(self) -> Iterator[Router]:
        for entry in self._entries:
            if isinstance(entry, Router):
                yield entry
                yield from entry._included()

    def routes(self) -> Iterator[Route]:
        """All routes in priority order, included routers expanded."""
        for entry in self._entries:
            if isinstance(entry, Router):
                yield from entry.routes()
            else:
                yield entry

    def answers_event(self, event: str, key: str) -> bool:
        """Whether some route is registered to answer event `event` with EventKey `key`
        (e.g. a menu's CLICK key): `Route.answers_event` over every route."""
        return any(route.answers_event(event, key) for route in self.routes())

    def _register(
        self,
        msg_type: str | None,
        matcher: Matcher | None,
        filters: tuple[Filter, ...],
        event: str | None = None,
        event_key: str | None = None,
        message_class: type[Message] | None = None,
        *,
        rerun: bool = True,
    ) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            route = Route(
                handler,
                msg_type,
                matcher,
                filters,
                event=event,
                event_key=event_key,
                message_class=message_class,
                rerun=rerun,
            )
            self._entries.append(route)
            return handler

        return decorator


def _text_matcher(pattern: str | re.Pattern[str] | None) -> Matcher | None:
    if pattern is None:
        return None
    if isinstance(pattern, re.Pattern):
        compiled = pattern

        def by_regex(msg: Message) -> re.Match[str] | bool:
            found = compiled.search(text_of(msg))
            return found if found is not None else False

        return by_regex
    exact = pattern.strip()
    return lambda msg: text_of(msg).strip() == exact
