"""The operator commands through their real entry point (`python -m bot ...`) against the fake:
menu push|show|delete, qrcode create, media upload, followers export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from png_check import png_size
from support import operator_env, run_cli

from bot.cli.followers_export import write_followers
from bot.client.api import WeChatAPI
from bot.followers.store import FollowerStore
from bot.storage.memory import MemoryStorage
from bot.testing.fake_wechat import FakeWeChat, many_followers
from bot.testing.pytest_plugin import BotFactory

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(platform_url: str, tmp_path: Path) -> dict[str, str]:
    """Settings for a command against `platform`."""
    return operator_env(platform_url, tmp_path / "data")


def _config(tmp_path: Path, menu: str, handlers: str = "[handlers.menu, handlers.greeting]") -> str:
    path = tmp_path / "config.yaml"
    path.write_text(f"handlers: {handlers}\nmenu:\n{menu}", encoding="utf-8")
    return str(path)


async def test_push_the_shipped_menu_then_show_and_delete_it(
    platform: FakeWeChat, env: dict[str, str]
) -> None:
    code, out, err = await run_cli(["menu", "push"], ROOT, env)
    assert (code, err) == (0, "")
    assert out.startswith("✓ menu pushed: 3 top-level button(s); conditional menu(s) ")
    assert platform.menus.default is not None
    assert [b["name"] for b in platform.menus.default["button"]] == ["关于我们", "海报", "更多"]
    assert [m["matchrule"] for m in platform.menus.conditional.values()] == [{"tag_id": "2"}]

    code, out, _ = await run_cli(["menu", "push"], ROOT, env)  # again: conditional replaced
    assert code == 0 and len(platform.menus.conditional) == 1

    code, out, _ = await run_cli(["menu", "show"], ROOT, env)
    assert code == 0
    assert out.splitlines()[:6] == [
        "Live menu (open):",
        "  关于我们  [click] MENU_ABOUT",
        "  海报  [click] MENU_POSTER",
        "  更多",
        "    └ 联系我们  [click] MENU_CONTACT",
        "    └ 官网  [view] https://example.com/",
    ]
    assert "(tag_id 2):" in out

    code, out, _ = await run_cli(["menu", "delete"], ROOT, env)
    assert code == 0
    assert not platform.menus.conditional
    assert platform.menus.default is None
    code, out, _ = await run_cli(["menu", "show"], ROOT, env)
    assert out == "The account has no menu.\n"


async def test_dry_run_prints_the_json_and_sends_nothing(
    platform: FakeWeChat, env: dict[str, str]
) -> None:
    code, out, _ = await run_cli(["menu", "push", "--dry-run"], ROOT, env)
    assert code == 0
    bodies = json.loads(out)
    assert bodies["menu/create"]["button"][0] == {
        "name": "关于我们",
        "type": "click",
        "key": "MENU_ABOUT",
    }
    assert bodies["menu/addconditional"][0]["matchrule"] == {"tag_id": "2"}
    assert sum(platform.counters.values()) == 0


async def test_a_bad_menu_is_refused_naming_the_button_and_nothing_is_sent(
    platform: FakeWeChat, env: dict[str, str], tmp_path: Path
) -> None:
    button = "    - {name: 关于, type: click, key: MENU_ABOUT}\n"
    config = _config(tmp_path, "  button:\n" + button * 4)
    code, _, err = await run_cli(["menu", "push", "--config", config], ROOT, env)
    assert code == 2
    assert err == ("wechat-bot: config: menu.button[3]: 1 to 3 top-level buttons allowed (got 4)\n")
    long_name = _config(tmp_path, "  button:\n    - {name: 一二三四五ab, type: click, key: K}\n")
    code, _, err = await run_cli(["menu", "push", "--config", long_name], ROOT, env)
    assert code == 2 and "menu.button[0].name: at most 16 bytes (got 17" in err
    assert sum(platform.counters.values()) == 0


async def test_a_click_key_no_handler_answers_is_refused_naming_it(
    platform: FakeWeChat, env: dict[str, str], tmp_path: Path
) -> None:
    menu = (
        "  button:\n    - {name: 关于, type: click, key: MENU_ABOUT}\n"
        "    - name: 更多\n      sub_button:\n"
        "        - {name: 抽奖, type: click, key: MENU_LOTTERY}\n"
    )
    config = _config(tmp_path, menu)
    code, _, err = await run_cli(["menu", "push", "--config", config], ROOT, env)
    assert code == 1
    assert err.splitlines() == [
        "wechat-bot: menu.button[1].sub_button[0].key: no route of the configured handlers "
        "answers the CLICK key 'MENU_LOTTERY'; add @router.event(\"CLICK\", 'MENU_LOTTERY') "
        "to a handler module (nothing was sent)"
    ]
    assert sum(platform.counters.values()) == 0
    # a catch-all CLICK route answers every key
    catch_all = _config(tmp_path, menu, handlers="[tests.catch_all_clicks]")
    code, _, err = await run_cli(["menu", "push", "--config", catch_all], ROOT, env)
    assert (code, err) == (0, "")


async def test_a_platform_refusal_is_explained(platform: FakeWeChat, env: dict[str, str]) -> None:
    platform.fail_with_errcode("menu_create", 48001)
    code, _, err = await run_cli(["menu", "push"], ROOT, env)
    assert code == 1
    assert err == (
        "wechat-bot: menu_create: errcode 48001: error (this API is not authorised for the "
        "account (most need a verified account))\n"
    )


async def test_qrcode_create_writes_a_png_and_its_scene_reaches_the_handler(
    wechat_bot: BotFactory, tmp_path: Path
) -> None:
    bot = await wechat_bot(handlers=["handlers.qrcode", "handlers.greeting"])
    url = bot.config.api_base_url
    out = tmp_path / "spring.png"
    code, text, err = await run_cli(
        ["qrcode", "create", "--scene", "spring_fair", "--expires", "604800", "--out", str(out)],
        ROOT,
        operator_env(url, tmp_path / "data"),
    )
    assert (code, err) == (0, "")
    fields = dict(line.split(":", 1) for line in text.splitlines())
    assert fields["scene"].strip() == "'spring_fair' (temporary)"
    assert fields["expires"].strip().endswith("(in 604,800 s)")
    assert png_size(out.read_bytes()) == (100, 100)
    assert fields["saved"].strip().endswith("PNG)")
    scene = bot.fake.qrcodes.scene_of(fields["ticket"].strip())
    reply = await bot.follow("o_demo_wang", scene=str(scene))
    assert reply.content == "欢迎！你通过「春季展会」的二维码关注了我们。发送“帮助”看看我能做什么。"


async def test_qrcode_limits_and_permanent_codes(platform: FakeWeChat, env: dict[str, str]) -> None:
    code, _, err = await run_cli(["qrcode", "create", "--scene", "s" * 65], ROOT, env)
    assert code == 2
    assert err == (
        "wechat-bot: scene_str: at most 64 characters (got 65: "
        "'sssssssssssssssssssssssssssssssssssss...') (nothing was sent)\n"
    )
    code, out, _ = await run_cli(["qrcode", "create", "--scene", "42", "--permanent"], ROOT, env)
    assert code == 0 and "scene:   42 (permanent)" in out and "expires: never" in out
    assert platform.counters["qrcode_create"] == 1


async def test_media_upload(platform: FakeWeChat, env: dict[str, str], tmp_path: Path) -> None:
    poster = ROOT / "handlers" / "static" / "poster.png"
    code, out, err = await run_cli(["media", "upload", str(poster), "--type", "image"], ROOT, env)
    assert (code, err) == (0, "")
    media_id = out.splitlines()[0].removeprefix("media_id: ")
    assert platform.media.temporary[media_id].content == poster.read_bytes()
    code, out, _ = await run_cli(
        ["media", "upload", str(poster), "--type", "image", "--permanent"], ROOT, env
    )
    assert code == 0 and "(permanent material)" in out and len(platform.media.material) == 1
    code, _, err = await run_cli(["media", "upload", str(poster), "--type", "thumb"], ROOT, env)
    assert code == 2 and "a thumb must be JPEG (PNG)" in err


async def test_followers_export_of_25000_followers(
    platform: FakeWeChat, env: dict[str, str], tmp_path: Path
) -> None:
    for follower in many_followers(25_000 - 4):  # and the 4 demo followers who still follow
        platform.add_follower(follower)
    out = tmp_path / "followers.csv"
    code, text, err = await run_cli(["followers", "export", "--out", str(out)], ROOT, env, 120)
    assert (code, err) == (0, "")  # no progress bar: stderr is not a terminal
    assert text == f"✓ exported 25,000 follower(s) to {out}\n"
    with out.open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["openid", "subscribe_time", "subscribe_scene", "remark", "tags", "name",
                       "language"]  # fmt: skip
    assert len(rows) == 1 + 25_000
    assert len({r[0] for r in rows[1:]}) == 25_000
    lin = next(r for r in rows if r[0] == "o_demo_lin")
    assert lin[3:5] == ["林老師", "星标组"]
    assert platform.counters["user_get"] == 3
    assert platform.counters["user_info_batchget"] == 250
    assert not (tmp_path / "followers.csv.partial").exists()


async def test_followers_export_stops_at_the_daily_quota_leaving_no_file(
    platform: FakeWeChat, env: dict[str, str], tmp_path: Path
) -> None:
    platform.fail_with_errcode("user_info_batchget", 45009)
    out = tmp_path / "followers.csv"
    code, _, err = await run_cli(["followers", "export", "--out", str(out)], ROOT, env)
    assert code == 1
    assert "user_info_batchget: errcode 45009" in err and "daily quota" in err
    assert not out.exists() and not (tmp_path / "followers.csv.partial").exists()


async def test_the_export_shows_progress_and_waits_out_the_minute_quota(
    platform_api: WeChatAPI, platform: FakeWeChat, tmp_path: Path
) -> None:
    for follower in many_followers(196):
        platform.add_follower(follower)
    store = FollowerStore(MemoryStorage(1000))
    await store.set_name("o_demo_wang", "小王")
    await store.set_language("o_demo_wang", "zh_CN")
    platform.fail_with_errcode("user_info_batchget", 45011)
    bar = io.StringIO()
    path = tmp_path / "f.csv"
    rows = await write_followers(platform_api, store, path, 2, 0.01, bar)
    assert rows == 200
    assert bar.getvalue().endswith("      200 / 200 [" + "#" * 30 + "] 100%\n")
    assert "      100 / 200 [" + "#" * 15 in bar.getvalue()
    lines = path.read_text(encoding="utf-8").splitlines()
    wang = next(r for r in csv.reader(lines) if r[0] == "o_demo_wang")
    assert wang[5:] == ["小王", "zh_CN"]
    assert platform.counters["user_info_batchget"] == 2 + 1  # one refused, waited, retried
