"""The router: what each decorator matches, filters, and priority order across included routers."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.routing.context import Context
from bot.routing.router import SKIP, HandlerResult, Route, Router
from bot.testing.simulator import event_fields, text_fields
from bot.wechat.messages import (
    ClickEvent,
    ImageMessage,
    LocationMessage,
    Message,
    parse_message,
)

OPENID = "o_router_test"


def text(content: str) -> Message:
    """A parsed text message."""
    return parse_message(text_fields(OPENID, content, msg_id="1001"))


def event(name: str, key: str | None = None) -> Message:
    """A parsed event."""
    return parse_message(event_fields(OPENID, name, key))


def image() -> Message:
    """A parsed image message."""
    fields: dict[str, Any] = {
        "ToUserName": "gh_acct",
        "FromUserName": OPENID,
        "CreateTime": 1700000000,
        "MsgType": "image",
        "PicUrl": "http://p/1.jpg",
        "MediaId": "m1",
        "MsgId": "1002",
    }
    return parse_message(fields)


async def hello(msg: Message, ctx: Context) -> HandlerResult:
    """A module-level handler, to check Route.name."""
    return "hello"


def only(router: Router) -> Route:
    """The router's single route."""
    routes = list(router.routes())
    assert len(routes) == 1
    return routes[0]


def matching(router: Router, msg: Message) -> list[Route]:
    """The routes of `router` that apply to `msg`, in order."""
    return [r for r in router.routes() if r.match(msg) is not False]


def test_exact_text_ignores_surrounding_spaces() -> None:
    router = Router()
    router.text("  help ")(hello)
    route = only(router)
    assert route.match(text("help")) is True
    assert route.match(text("\thelp\n")) is True
    assert route.match(text("help me")) is False
    assert route.match(text("Help")) is False
    assert route.msg_type == "text"


def test_regex_is_searched_and_returns_the_match() -> None:
    router = Router()
    router.text(re.compile(r"weather (\w+)"))(hello)
    route = only(router)
    found = route.match(text("what is the weather Paris today"))
    assert isinstance(found, re.Match)
    assert found[1] == "Paris"
    assert route.match(text("sunny")) is False


def test_none_pattern_matches_any_text_but_not_other_types() -> None:
    router = Router()
    router.text()(hello)
    route = only(router)
    assert route.match(text("")) is True
    assert route.match(text("anything")) is True
    assert route.match(image()) is False
    assert route.match(event("subscribe")) is False


def test_event_name_is_case_insensitive() -> None:
    router = Router()
    router.event("SCAN")(hello)
    router.event("click")(hello)
    scan, click = router.routes()
    assert scan.match(event("scan", "42")) is True
    assert scan.match(event("SCAN")) is True
    assert click.match(event("CLICK", "menu_a")) is True
    assert scan.match(event("subscribe")) is False
    assert scan.match(text("SCAN")) is False


def test_event_key_must_match_exactly() -> None:
    router = Router()
    router.event("CLICK", "menu_a")(hello)
    route = only(router)
    assert route.match(event("CLICK", "menu_a")) is True
    assert route.match(event("CLICK", "menu_b")) is False
    assert route.match(event("CLICK")) is False


def test_message_by_type_name_is_case_insensitive() -> None:
    router = Router()
    router.message("IMAGE")(hello)
    route = only(router)
    assert route.msg_type == "image"
    assert route.match(image()) is True
    assert route.match(text("image")) is False


def test_message_by_class() -> None:
    router = Router()
    router.message(ImageMessage)(hello)
    router.message(LocationMessage)(hello)
    by_image, by_location = router.routes()
    assert by_image.match(image()) is True
    assert by_image.match(text("x")) is False
    assert by_location.match(image()) is False


def test_message_without_type_matches_everything() -> None:
    router = Router()
    router.message()(hello)
    route = only(router)
    assert route.msg_type is None
    for msg in (text("x"), image(), event("unsubscribe")):
        assert route.match(msg) is True


def test_extra_filters_must_all_hold() -> None:
    router = Router()
    router.text(None, lambda m: m.from_user == OPENID, lambda m: "!" in m.raw["Content"])(hello)
    router.event("subscribe", None, lambda m: False)(hello)
    router.message("image", lambda m: m.msg_id == "1002")(hello)
    text_route, event_route, image_route = router.routes()
    assert text_route.match(text("hi!")) is True
    assert text_route.match(text("hi")) is False
    assert event_route.match(event("subscribe")) is False
    assert image_route.match(image()) is True


def test_filter_applies_after_the_regex_and_keeps_the_match() -> None:
    router = Router()
    router.text(re.compile(r"(\d+)"), lambda m: True)(hello)
    found = only(router).match(text("order 77"))
    assert isinstance(found, re.Match) and found[1] == "77"


def test_decorator_returns_the_handler_unchanged() -> None:
    router = Router()
    assert router.text("x")(hello) is hello
    assert router.event("subscribe")(hello) is hello
    assert router.message("image")(hello) is hello


def make_handler(label: str) -> Any:
    """A handler whose qualname carries `label`, to identify routes."""

    async def handler(msg: Message, ctx: Context) -> HandlerResult:
        return label

    handler.__qualname__ = label
    return handler


def labels(router: Router) -> list[str]:
    """The qualnames of the router's handlers, in priority order."""
    return [r.handler.__qualname__ for r in router.routes()]


def test_include_keeps_priority_order_at_the_include_point() -> None:
    root, sub, subsub = Router("root"), Router("sub"), Router("subsub")
    root.text("a")(make_handler("A"))
    sub.text("b")(make_handler("B"))
    subsub.text("c")(make_handler("C"))
    sub.include(subsub)
    sub.text("d")(make_handler("D"))
    root.include(sub)
    root.text("e")(make_handler("E"))
    assert labels(root) == ["A", "B", "C", "D", "E"]


def test_routes_added_to_an_included_router_later_stand_at_the_include_point() -> None:
    root, sub = Router(), Router()
    root.include(sub)
    root.text("z")(make_handler("Z"))
    sub.text("y")(make_handler("Y"))
    assert labels(root) == ["Y", "Z"]


def test_first_matching_route_in_order_is_listed_first() -> None:
    root, sub = Router(), Router()
    root.text("x")(make_handler("exact"))
    sub.text()(make_handler("any"))
    root.include(sub)
    root.message()(make_handler("all"))
    assert [r.handler.__qualname__ for r in matching(root, text("x"))] == ["exact", "any", "all"]
    assert [r.handler.__qualname__ for r in matching(root, image())] == ["all"]


def test_including_itself_raises() -> None:
    router = Router()
    with pytest.raises(ValueError, match="cannot include itself"):
        router.include(router)
    assert list(router.routes()) == []


def test_including_a_router_that_includes_this_one_raises() -> None:
    first, second = Router(), Router()
    first.include(second)
    with pytest.raises(ValueError):
        second.include(first)


def test_route_name_is_module_and_qualname() -> None:
    router = Router()
    router.text("x")(hello)
    assert only(router).name == f"{__name__}.hello"


def test_route_name_of_a_nested_function() -> None:
    async def inner(msg: Message, ctx: Context) -> HandlerResult:
        return None

    router = Router()
    router.message()(inner)
    expected = f"{__name__}.test_route_name_of_a_nested_function.<locals>.inner"
    assert only(router).name == expected


def test_skip_is_a_singleton_with_a_readable_repr() -> None:
    assert type(SKIP)() is SKIP
    assert repr(SKIP) == "SKIP"


def test_answers_event_tells_which_menu_keys_a_route_answers() -> None:
    by_key, any_event, any_message, filtered = Router(), Router(), Router(), Router()

    async def handler(msg: Message, ctx: Context) -> str:
        return "x"

    by_key.event("CLICK", "MENU_A")(handler)
    by_key.event("SCAN")(handler)
    assert by_key.answers_event("click", "MENU_A")
    assert not by_key.answers_event("CLICK", "MENU_B")
    assert by_key.answers_event("scan", "anything") and not by_key.answers_event("VIEW", "u")
    by_key.text()(handler)  # texts are not events
    assert not by_key.answers_event("CLICK", "MENU_B")
    any_event.message("event")(handler)
    assert any_event.answers_event("CLICK", "MENU_B")
    any_message.message()(handler)
    assert any_message.answers_event("CLICK", "MENU_B")
    filtered.message(None, lambda m: False)(handler)  # a filter may refuse: not counted
    assert not filtered.answers_event("CLICK", "MENU_B")
    clicks, images = Router(), Router()
    clicks.message(ClickEvent)(handler)
    assert clicks.answers_event("CLICK", "MENU_B") and not clicks.answers_event("VIEW", "u")
    images.message(ImageMessage)(handler)
    assert not images.answers_event("CLICK", "MENU_B")
    outer = Router()
    outer.include(by_key)
    assert outer.answers_event("CLICK", "MENU_A")
