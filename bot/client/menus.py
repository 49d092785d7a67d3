"""The custom menu (platform notes §8): typed buttons, their limits, and the menu API.

    menu = Menu((MenuButton("关于", type="click", key="MENU_ABOUT"),))
    await api.menus.create(menu)

`Menu.from_json` reads the platform's shape (what `config.yaml`'s `menu:` holds too);
`validate_menu` checks every documented limit and raises `LimitError` naming the button.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.client.caller import APICaller
from bot.client.errors import LimitError, WeChatAPIError
from bot.client.limits import check_bytes

MAX_BUTTONS = 3
MAX_SUB_BUTTONS = 5
MAX_NAME_BYTES = 16  # a top-level button's name (clients show 4 Chinese characters)
MAX_SUB_NAME_BYTES = 60  # a sub-button's name (clients show 8)
MAX_KEY_BYTES = 128
MAX_URL_BYTES = 1024
# type -> the fields a button of that type must carry
BUTTON_FIELDS: dict[str, tuple[str, ...]] = {
    "click": ("key",),
    "view": ("url",),
    "scancode_push": ("key",),
    "scancode_waitmsg": ("key",),
    "pic_sysphoto": ("key",),
    "pic_photo_or_album": ("key",),
    "pic_weixin": ("key",),
    "location_select": ("key",),
    "media_id": ("media_id",),
    "article_id": ("article_id",),
    "article_view_limited": ("article_id",),
    "miniprogram": ("url", "appid", "pagepath"),
}
# buttons whose key comes back in an event a handler answers (CLICK and the code scanners)
KEYED_TYPES = frozenset({"click", "scancode_push", "scancode_waitmsg"})
_NO_LONGER_MATCHED = ("sex", "country", "province", "city", "language")  # refused with 65320
_ERR_NO_MENU = 46003
_OPTIONAL = ("key", "url", "media_id", "article_id", "appid", "pagepath")


@dataclass(frozen=True)
class MenuButton:
    """One button: a leaf with a `type`, or a parent (no type) of up to 5 `sub_buttons`."""

    name: str
    type: str | None = None
    key: str | None = None
    url: str | None = None
    media_id: str | None = None
    article_id: str | None = None
    appid: str | None = None
    pagepath: str | None = None
    sub_buttons: tuple[MenuButton, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The platform's JSON for this button."""
        out: dict[str, Any] = {"name": self.name}
        if self.sub_buttons:
            out["sub_button"] = [b.to_json() for b in self.sub_buttons]
            return out
        if self.type is not None:
            out["type"] = self.type
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, raw: object, field: str = "button") -> MenuButton:
        """A button from the platform's JSON (or YAML); LimitError when it is not shaped so."""
        if not isinstance(raw, Mapping):
            raise LimitError(field, "must be a mapping with name, type and key/url/…")
        unknown = set(raw) - {"name", "type", "sub_button", *_OPTIONAL}
        if unknown:
            raise LimitError(f"{field}.{sorted(unknown)[0]}", "unknown button field")
        name = raw.get("name")
        if not isinstance(name, str):
            raise LimitError(f"{field}.name", "missing (every button needs a name)")
        values: dict[str, str | None] = {}
        for key in ("type", *_OPTIONAL):
            value = raw.get(key)
            if value is not None and not isinstance(value, str | int):
                raise LimitError(f"{field}.{key}", "must be a string")
            values[key] = None if value is None else str(value)
        sub = raw.get("sub_button")
        if isinstance(sub, Mapping):  # get_current_selfmenu_info wraps them: {"list": [...]}
            sub = sub.get("list")
        if sub is not None and not isinstance(sub, list):
            raise LimitError(f"{field}.sub_button", "must be a list of buttons")
        subs = tuple(cls.from_json(s, f"{field}.sub_button[{i}]") for i, s in enumerate(sub or ()))
        return cls(name=name, sub_buttons=subs, **values)


@dataclass(frozen=True)
class MatchRule:
    """Who sees a conditional menu: followers with `tag_id` (and optionally one platform)."""

    tag_id: str | None = None
    client_platform_type: str | None = None

    def to_json(self) -> dict[str, str]:
        """The platform's JSON."""
        out = {}
        if self.tag_id is not None:
            out["tag_id"] = self.tag_id
        if self.client_platform_type is not None:
            out["client_platform_type"] = self.client_platform_type
        return out

    @classmethod
    def from_json(cls, raw: object, field: str = "matchrule") -> MatchRule:
        """A rule from JSON; fields the platform stopped matching on are refused (65320)."""
        if not isinstance(raw, Mapping):
            raise LimitError(field, "must be a mapping (tag_id)")
        for key in _NO_LONGER_MATCHED:
            if raw.get(key) not in (None, ""):
                raise LimitError(
                    f"{field}.{key}", "no longer supported (errcode 65320); use tag_id"
                )
        unknown = set(raw) - {"tag_id", "client_platform_type", "group_id", *_NO_LONGER_MATCHED}
        if unknown:
            raise LimitError(f"{field}.{sorted(unknown)[0]}", "unknown matchrule field")
        tag = raw.get("tag_id", raw.get("group_id"))
        platform = raw.get("client_platform_type")
        return cls(
            tag_id=None if tag in (None, "") else str(tag),
            client_platform_type=None if platform in (None, "") else str(platform),
        )


@dataclass(frozen=True)
class Menu:
    """A default menu, or a conditional one (with `matchrule`; `menuid` once created)."""

    buttons: tuple[MenuButton, ...]
    matchrule: MatchRule | None = None
    menuid: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The body of menu/create (or addconditional, with its matchrule)."""
        out: dict[str, Any] = {"button": [b.to_json() for b in self.buttons]}
        if self.matchrule is not None:
            out["matchrule"] = self.matchrule.to_json()
        return out

    @classmethod
    def from_json(cls, raw: object, field: str = "menu") -> Menu:
        """A menu from `{"button": [...], "matchrule"?: {...}, "menuid"?: ...}`."""
        if not isinstance(raw, Mapping) or not isinstance(raw.get("button"), list):
            raise LimitError(f"{field}.button", "missing (a menu is {button: [...]})")
        buttons = tuple(
            MenuButton.from_json(b, f"{field}.button[{i}]") for i, b in enumerate(raw["button"])
        )
        rule = raw.get("matchrule")
        menuid = raw.get("menuid")
        return cls(
            buttons=buttons,
            matchrule=None if rule is None else MatchRule.from_json(rule, f"{field}.matchrule"),
            menuid=None if menuid is None else str(menuid),
        )

    def keyed_buttons(self) -> Iterator[tuple[str, MenuButton]]:
        """Every leaf whose key comes back in an event, with its field path."""
        for i, button in enumerate(self.buttons):
            if not button.sub_buttons:
                leaves = [(f"button[{i}]", button)]
            else:
                leaves = [
                    (f"button[{i}].sub_button[{j}]", sub)
                    for j, sub in enumerate(button.sub_buttons)
                ]
            for path, leaf in leaves:
                if leaf.type in KEYED_TYPES and leaf.key:
                    yield path, leaf


@dataclass(frozen=True)
class MenuSet:
    """An account's menus: the default one and the conditional ones."""

    default: Menu | None
    conditional: tuple[Menu, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """`{"button": [...], "conditional": [{button, matchrule}, ...]}` (config.yaml's shape)."""
        out: dict[str, Any] = self.default.to_json() if self.default else {"button": []}
        if self.conditional:
            out["conditional"] = [m.to_json() for m in self.conditional]
        return out

    @classmethod
    def from_config(cls, raw: object, field: str = "menu") -> MenuSet:
        """config.yaml's `menu:`: a default menu and an optional `conditional:` list, checked."""
        if not isinstance(raw, Mapping):
            raise LimitError(field, "must be a mapping: {button: [...], conditional: [...]}")
        unknown = set(raw) - {"button", "conditional"}
        if unknown:
            raise LimitError(f"{field}.{sorted(unknown)[0]}", "unknown menu field")
        default = Menu.from_json({"button": raw.get("button")}, field)
        validate_menu(default, field)
        conditional = raw.get("conditional") or []
        if not isinstance(conditional, list):
            raise LimitError(f"{field}.conditional", "must be a list of menus with a matchrule")
        menus = []
        for i, entry in enumerate(conditional):
            where = f"{field}.conditional[{i}]"
            menu = Menu.from_json(entry, where)
            if menu.menuid is not None:
                raise LimitError(f"{where}.menuid", "is given by the platform, not configured")
            validate_menu(menu, where)
            menus.append(menu)
        return cls(default, tuple(menus))


def validate_menu(menu: Menu, field: str = "menu") -> None:
    """Raise LimitError for the first documented limit `menu` breaks (platform notes §8)."""
    if not 1 <= len(menu.buttons) <= MAX_BUTTONS:
        where = f"{field}.button[{MAX_BUTTONS}]" if menu.buttons else f"{field}.button"
        raise LimitError(
            where, f"1 to {MAX_BUTTONS} top-level buttons allowed (got {len(menu.buttons)})"
        )
    for i, button in enumerate(menu.buttons):
        where = f"{field}.button[{i}]"
        check_bytes(f"{where}.name", button.name, MAX_NAME_BYTES)
        if button.sub_buttons:
            if button.type is not None:
                raise LimitError(f"{where}.type", "a button with sub_button has no type")
            if len(button.sub_buttons) > MAX_SUB_BUTTONS:
                raise LimitError(
                    f"{where}.sub_button[{MAX_SUB_BUTTONS}]",
                    f"at most {MAX_SUB_BUTTONS} sub-buttons (got {len(button.sub_buttons)})",
                )
            for j, sub in enumerate(button.sub_buttons):
                sub_where = f"{where}.sub_button[{j}]"
                if sub.sub_buttons:
                    raise LimitError(f"{sub_where}.sub_button", "sub-buttons cannot nest")
                check_bytes(f"{sub_where}.name", sub.name, MAX_SUB_NAME_BYTES)
                _check_leaf(sub, sub_where)
        else:
            _check_leaf(button, where)
    if menu.matchrule is not None and not menu.matchrule.to_json():
        raise LimitError(f"{field}.matchrule", "needs tag_id (errcode 65304 otherwise)")


def _check_leaf(button: MenuButton, where: str) -> None:
    if button.type not in BUTTON_FIELDS:
        raise LimitError(
            f"{where}.type", f"must be one of {', '.join(BUTTON_FIELDS)} (got {button.type!r})"
        )
    for name in BUTTON_FIELDS[button.type]:
        value = getattr(button, name)
        if not value:
            raise LimitError(f"{where}.{name}", f"required for a {button.type} button")
    if button.key is not None:
        check_bytes(f"{where}.key", button.key, MAX_KEY_BYTES)
    if button.url is not None:
        check_bytes(f"{where}.url", button.url, MAX_URL_BYTES)
        if not button.url.startswith(("http://", "https://")):
            raise LimitError(f"{where}.url", "must start with http:// or https://")


@dataclass(frozen=True)
class LiveMenu:
    """What followers see now (`get_current_selfmenu_info`), console-made menus included."""

    is_open: bool
    buttons: tuple[MenuButton, ...]


class MenuAPI:
    """menu/create, get, delete, addconditional, delconditional, trymatch, and the live menu."""

    def __init__(self, api: APICaller) -> None:
        """Calls go through `api`."""
        self._api = api

    async def create(self, menu: Menu) -> None:
        """Replace the default menu (validated first; raises LimitError before any call)."""
        if menu.matchrule is not None:
            raise LimitError("menu.matchrule", "a default menu has none: use add_conditional")
        validate_menu(menu)
        await self._api.call("POST", "/cgi-bin/menu/create", json_body=menu.to_json())

    async def get(self) -> MenuSet:
        """The API-made menus (empty `MenuSet` when the account has none)."""
        try:
            data = await self._api.call("GET", "/cgi-bin/menu/get")
        except WeChatAPIError as exc:
            if exc.errcode == _ERR_NO_MENU:
                return MenuSet(None)
            raise
        default = data.get("menu")
        conditional = data.get("conditionalmenu")
        return MenuSet(
            None if default is None else Menu.from_json(default),
            tuple(
                Menu.from_json(m, f"conditionalmenu[{i}]")
                for i, m in enumerate(conditional if isinstance(conditional, list) else [])
            ),
        )

    async def current(self) -> LiveMenu:
        """The menu followers see now, however it was made."""
        data = await self._api.call("GET", "/cgi-bin/get_current_selfmenu_info")
        info = data.get("selfmenu_info")
        buttons = info.get("button") if isinstance(info, Mapping) else None
        return LiveMenu(
            is_open=data.get("is_menu_open") == 1,
            buttons=tuple(
                MenuButton.from_json(_live(b), f"button[{i}]")
                for i, b in enumerate(buttons if isinstance(buttons, list) else [])
            ),
        )

    async def delete(self) -> None:
        """Delete the default menu and every conditional menu."""
        await self._api.call("GET", "/cgi-bin/menu/delete")

    async def add_conditional(self, menu: Menu) -> str:
        """Add a conditional menu (validated first); its `menuid`."""
        if menu.matchrule is None:
            raise LimitError("menu.matchrule", "a conditional menu needs one (tag_id)")
        validate_menu(menu)
        data = await self._api.call(
            "POST", "/cgi-bin/menu/addconditional", json_body=menu.to_json()
        )
        return str(data.get("menuid", ""))

    async def delete_conditional(self, menuid: str) -> None:
        """Delete one conditional menu."""
        await self._api.call("POST", "/cgi-bin/menu/delconditional", json_body={"menuid": menuid})

    async def try_match(self, user_id: str) -> tuple[MenuButton, ...]:
        """The buttons `user_id` (an openid or WeChat id) would see."""
        data = await self._api.call(
            "POST", "/cgi-bin/menu/trymatch", json_body={"user_id": user_id}
        )
        buttons = data.get("button")
        return tuple(
            MenuButton.from_json(b, f"button[{i}]")
            for i, b in enumerate(buttons if isinstance(buttons, list) else [])
        )


def _live(raw: object) -> object:
    """A live-menu button with the fields `MenuButton` keeps (console menus carry more)."""
    if not isinstance(raw, Mapping):
        return raw
    kept: dict[str, Any] = {k: raw[k] for k in ("name", "type", *_OPTIONAL) if k in raw}
    sub = raw.get("sub_button")
    if isinstance(sub, Mapping):
        sub = sub.get("list")
    if isinstance(sub, list) and sub:
        kept["sub_button"] = [_live(s) for s in sub]
    elif kept.get("type") not in BUTTON_FIELDS and isinstance(raw.get("value"), str):
        kept["key"] = raw["value"]  # console-made buttons (text, img, news…) carry a value
    return kept
