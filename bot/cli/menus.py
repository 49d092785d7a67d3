"""`wechat-bot menu push|show|delete`: the custom menu as code, from `config.yaml`'s `menu:`.

`push` refuses a menu whose `click` buttons send a key no route of the configured handlers
answers (unless a catch-all `CLICK` route exists), naming each key: a button nobody answers is
the classic silent bug. The menu's limits were checked when the configuration loaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from bot.cli.account import EXIT_INVALID, EXIT_OK, EXIT_REFUSED, fail, run_operation
from bot.client.api import WeChatAPI
from bot.client.menus import MatchRule, Menu, MenuButton, MenuSet
from bot.config import Config
from bot.routing.dispatch import load_router
from bot.storage.base import Storage


def unanswered_click_keys(menus: MenuSet, handlers: Sequence[str]) -> list[tuple[str, str]]:
    """(field, key) of every `click` button no route of `handlers` answers."""
    router = load_router(handlers)
    missing = []
    for where, menu in _menus(menus):
        for path, button in menu.keyed_buttons():
            key = button.key or ""
            if button.type == "click" and not router.answers_event("CLICK", key):
                missing.append((f"{where}.{path}.key", key))
    return missing


def push_bodies(menus: MenuSet) -> dict[str, object]:
    """What `push` sends: the menu/create body and each menu/addconditional body."""
    bodies: dict[str, object] = {}
    if menus.default is not None:
        bodies["menu/create"] = menus.default.to_json()
    if menus.conditional:
        bodies["menu/addconditional"] = [m.to_json() for m in menus.conditional]
    return bodies


async def push(config: Config, *, dry_run: bool) -> int:
    """Check the configured menu against the handlers, then create it (or print it)."""
    menus = config.menu
    if menus is None or menus.default is None:
        fail("config: menu: no menu configured (add a `menu:` section to config.yaml)")
        return EXIT_INVALID
    missing = unanswered_click_keys(menus, config.handlers)
    for field, key in missing:
        fail(
            f"{field}: no route of the configured handlers answers the CLICK key {key!r}; "
            f'add @router.event("CLICK", {key!r}) to a handler module (nothing was sent)'
        )
    if missing:
        return EXIT_REFUSED
    if dry_run:
        print(json.dumps(push_bodies(menus), ensure_ascii=False, indent=2))
        return EXIT_OK
    default = menus.default

    async def send(api: WeChatAPI, _storage: Storage) -> int:
        await api.menus.create(default)
        for old in (await api.menus.get()).conditional:
            if old.menuid:
                await api.menus.delete_conditional(old.menuid)
        ids = [await api.menus.add_conditional(menu) for menu in menus.conditional]
        note = f"; conditional menu(s) {', '.join(ids)}" if ids else ""
        print(
            f"✓ menu pushed: {len(default.buttons)} top-level button(s){note}. "
            "Followers see it within about 5 minutes."
        )
        return EXIT_OK

    return await run_operation(config, send)


async def show(config: Config) -> int:
    """Print the live menu (console-made too) and the API-made conditional menus."""

    async def read(api: WeChatAPI, _storage: Storage) -> int:
        live = await api.menus.current()
        if not live.buttons:
            print("The account has no menu.")
            return EXIT_OK
        print(f"Live menu ({'open' if live.is_open else 'closed'}):")
        for line in describe(live.buttons):
            print(f"  {line}")
        for menu in (await api.menus.get()).conditional:
            rule = ", ".join(
                f"{k} {v}" for k, v in (menu.matchrule or MatchRule()).to_json().items()
            )
            print(f"Conditional menu {menu.menuid} ({rule}):")
            for line in describe(menu.buttons):
                print(f"  {line}")
        return EXIT_OK

    return await run_operation(config, read)


async def delete(config: Config) -> int:
    """Delete the default menu and every conditional menu."""

    async def remove(api: WeChatAPI, _storage: Storage) -> int:
        await api.menus.delete()
        print("✓ menu deleted (the default menu and every conditional menu)")
        return EXIT_OK

    return await run_operation(config, remove)


def describe(buttons: Sequence[MenuButton]) -> Iterator[str]:
    """Buttons as readable lines: name, type and what it sends; sub-buttons indented."""
    for button in buttons:
        if button.sub_buttons:
            yield button.name
            for sub in button.sub_buttons:
                yield f"  └ {_leaf(sub)}"
        else:
            yield _leaf(button)


def _leaf(button: MenuButton) -> str:
    target = button.key or button.url or button.media_id or button.article_id or ""
    if button.type == "miniprogram":
        target = f"{button.appid} {button.pagepath} (fallback {button.url})"
    return f"{button.name}  [{button.type}] {target}".rstrip()


def _menus(menus: MenuSet) -> Iterator[tuple[str, Menu]]:
    if menus.default is not None:
        yield "menu", menus.default
    for i, menu in enumerate(menus.conditional):
        yield f"menu.conditional[{i}]", menu
