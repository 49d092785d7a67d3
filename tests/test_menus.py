"""The custom menu: typed buttons, limits checked before the call, the API through the fake."""

from __future__ import annotations

from typing import Any

import pytest

from bot.client.api import LimitError, WeChatAPI, WeChatAPIError
from bot.client.menus import MatchRule, Menu, MenuButton, MenuSet, validate_menu
from bot.testing.fake_menus import menu_errcode
from bot.testing.fake_wechat import FakeWeChat

ABOUT = MenuButton("关于", type="click", key="MENU_ABOUT")
SITE = MenuButton("官网", type="view", url="https://example.com/")
MENU = Menu((ABOUT, MenuButton("更多", sub_buttons=(SITE,))))


def _limit(menu: Menu) -> LimitError:
    with pytest.raises(LimitError) as info:
        validate_menu(menu)
    return info.value


def test_a_fourth_top_level_button_is_refused_naming_it() -> None:
    error = _limit(Menu((ABOUT, ABOUT, ABOUT, ABOUT)))
    assert error.field == "menu.button[3]"
    assert "1 to 3 top-level buttons" in str(error)


def test_a_17_byte_name_is_refused_with_the_limit() -> None:
    name = "一二三四五ab"  # 5 × 3 bytes + 2 = 17 bytes
    error = _limit(Menu((MenuButton(name, type="click", key="K"),)))
    assert (error.field, error.problem.split(" (")[0]) == (
        "menu.button[0].name",
        "at most 16 bytes",
    )
    validate_menu(Menu((MenuButton(name[:-1], type="click", key="K"),)))  # 16 bytes: fine


@pytest.mark.parametrize(
    ("menu", "field"),
    [
        (Menu(()), "menu.button"),
        (Menu((MenuButton("x", sub_buttons=(SITE,) * 6),)), "menu.button[0].sub_button[5]"),
        (
            Menu((MenuButton("x", sub_buttons=(MenuButton("y" * 61, type="click", key="k"),)),)),
            "menu.button[0].sub_button[0].name",
        ),
        (Menu((MenuButton("x", type="click", key="k" * 129),)), "menu.button[0].key"),
        (Menu((MenuButton("x", type="click"),)), "menu.button[0].key"),
        (
            Menu((MenuButton("x", type="view", url="https://e/" + "u" * 1015),)),
            "menu.button[0].url",
        ),
        (Menu((MenuButton("x", type="view", url="ftp://example.com/"),)), "menu.button[0].url"),
        (Menu((MenuButton("x", type="clicky", key="k"),)), "menu.button[0].type"),
        (
            Menu((MenuButton("x", type="miniprogram", url="https://e/", appid="wx1"),)),
            "menu.button[0].pagepath",
        ),
        (Menu((MenuButton("x", type="media_id"),)), "menu.button[0].media_id"),
        (Menu((ABOUT,), matchrule=MatchRule()), "menu.matchrule"),
    ],
)
def test_each_limit_names_its_field(menu: Menu, field: str) -> None:
    assert _limit(menu).field == field


def test_config_shape_is_read_and_checked() -> None:
    raw: dict[str, Any] = {
        "button": [{"name": "关于", "type": "click", "key": "MENU_ABOUT"}],
        "conditional": [
            {"matchrule": {"tag_id": 2}, "button": [{"name": "a", "type": "click", "key": "B"}]}
        ],
    }
    menus = MenuSet.from_config(raw)
    assert menus.default == Menu((ABOUT,))
    assert menus.conditional[0].matchrule == MatchRule(tag_id="2")
    assert menus.to_json()["conditional"][0]["matchrule"] == {"tag_id": "2"}
    with pytest.raises(LimitError) as info:
        MenuSet.from_config(
            {"button": [{"name": "a", "type": "click", "key": "k", "colour": "red"}]}
        )
    assert info.value.field == "menu.button[0].colour"
    with pytest.raises(LimitError) as info:
        MenuSet.from_config(
            {**raw, "conditional": [{"matchrule": {"sex": "1"}, "button": raw["button"]}]}
        )
    assert info.value.field == "menu.conditional[0].matchrule.sex"
    assert "65320" in info.value.problem


async def test_create_get_current_and_delete(platform_api: WeChatAPI, platform: FakeWeChat) -> None:
    assert await platform_api.menus.get() == MenuSet(None)
    await platform_api.menus.create(MENU)
    stored = await platform_api.menus.get()
    assert stored.default is not None and stored.default.buttons == MENU.buttons
    live = await platform_api.menus.current()
    assert live.is_open and live.buttons == MENU.buttons  # sub-buttons unwrapped from {"list"}
    await platform_api.menus.delete()
    assert (await platform_api.menus.current()).buttons == ()
    assert platform.counters["menu_create"] == 1


async def test_a_menu_over_the_limits_sends_nothing(
    platform_api: WeChatAPI, platform: FakeWeChat
) -> None:
    with pytest.raises(LimitError):
        await platform_api.menus.create(Menu((ABOUT,) * 4))
    assert platform.counters["menu_create"] == 0


async def test_conditional_menus_and_try_match(
    platform_api: WeChatAPI, platform: FakeWeChat
) -> None:
    tagged = Menu((SITE,), matchrule=MatchRule(tag_id="2"))
    with pytest.raises(WeChatAPIError) as info:  # the platform's own rule: default first
        await platform_api.menus.add_conditional(tagged)
    assert info.value.errcode == 65303
    assert "default menu" in str(info.value)
    await platform_api.menus.create(MENU)
    menuid = await platform_api.menus.add_conditional(tagged)
    assert (await platform_api.menus.get()).conditional[0].menuid == menuid
    assert await platform_api.menus.try_match("o_demo_lin") == (SITE,)  # has tag 2
    assert await platform_api.menus.try_match("o_demo_wang") == MENU.buttons
    await platform_api.menus.delete_conditional(menuid)
    assert await platform_api.menus.try_match("o_demo_lin") == MENU.buttons
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.menus.delete_conditional(menuid)
    assert info.value.errcode == 65301


async def test_a_conditional_menu_for_an_unknown_tag_is_refused(platform_api: WeChatAPI) -> None:
    await platform_api.menus.create(MENU)
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.menus.add_conditional(Menu((SITE,), matchrule=MatchRule(tag_id="999")))
    assert info.value.errcode == 45159


async def test_the_platform_refuses_what_the_client_would(
    platform_api: WeChatAPI, platform: FakeWeChat
) -> None:
    body = {"button": [{"name": "x" * 17, "type": "click", "key": "k"}]}
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.call("POST", "/cgi-bin/menu/create", json_body=body)
    assert (info.value.errcode, info.value.endpoint) == (40018, "menu_create")
    assert "16 bytes" in str(info.value)
    assert platform.menus.default is None


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"button": []}, 40016),
        ({"button": [{"name": "a", "type": "click", "key": "k"}] * 4}, 40016),
        ({"button": [{"name": "a", "type": "nope"}]}, 40017),
        ({"button": [{"name": "a", "type": "click", "key": "k" * 129}]}, 40019),
        ({"button": [{"name": "a", "type": "view", "url": "u" * 1025}]}, 40020),
        ({"button": [{"name": "a", "type": "view", "url": "ftp://x"}]}, 40055),
        (
            {
                "button": [
                    {"name": "a", "sub_button": [{"name": "b", "type": "click", "key": "k"}] * 6}
                ]
            },
            40023,
        ),
        ({"button": [{"name": "a", "sub_button": [{"name": "b", "type": "x"}]}]}, 40024),
        (
            {
                "button": [
                    {"name": "a", "sub_button": [{"name": "b" * 61, "type": "click", "key": "k"}]}
                ]
            },
            40025,
        ),
        ({"button": [{"name": "a", "sub_button": [{"name": "b", "type": "click"}]}]}, 40026),
        (
            {"button": [{"name": "a", "sub_button": [{"name": "b", "type": "view", "url": ""}]}]},
            40027,
        ),
        (
            {
                "button": [
                    {"name": "a", "sub_button": [{"name": "b", "type": "view", "url": "x:y"}]}
                ]
            },
            40054,
        ),
        ({"button": [{"name": "a", "type": "media_id"}]}, 40007),
        ({"button": [{"name": "a", "type": "click", "key": "k"}]}, 0),
    ],
)
def test_the_fakes_menu_checks_give_the_platforms_errcodes(
    body: dict[str, Any], errcode: int
) -> None:
    assert menu_errcode(body) == errcode


async def test_operator_calls_recover_a_refused_token_as_every_call_does(
    platform_api: WeChatAPI, platform: FakeWeChat
) -> None:
    await platform_api.menus.create(MENU)
    platform.expire_tokens()
    platform.fail_with_errcode("menu_get", -1)  # system busy: retried with backoff
    assert (await platform_api.menus.get()).default is not None
    assert platform.counters["menu_get"] == 3  # busy, expired token, then the answer
    assert platform.counters["stable_token"] == 2
