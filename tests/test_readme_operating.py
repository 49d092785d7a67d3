"""README's "Operating the account": every command runs as written, the handler works as shown."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from png_check import png_size
from support import operator_env, run_cli

from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import BotFactory

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block(name: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    assert README.count(start) == 1 and README.count(end) == 1, f"README needs one {name} block"
    body = README.split(start, 1)[1].split(end, 1)[0].strip()
    lines = body.splitlines()
    assert lines[0].startswith("```") and lines[-1] == "```"
    return "\n".join(lines[1:-1]) + "\n"


def test_the_section_is_there() -> None:
    assert "\n## Operating the account\n" in README


async def test_every_command_runs_as_written(
    platform: FakeWeChat, platform_url: str, tmp_path: Path
) -> None:
    commands = [shlex.split(line, comments=True) for line in _block("operating-cli").splitlines()]
    assert all(c[0] == "wechat-bot" for c in commands) and len(commands) == 8
    static = tmp_path / "handlers" / "static"
    static.mkdir(parents=True)
    shutil.copy(ROOT / "handlers" / "static" / "poster.png", static)
    env = operator_env(platform_url, tmp_path / "data", BOT_CONFIG=str(ROOT / "config.yaml"))
    for command in commands:
        code, out, err = await run_cli(command[1:], tmp_path, env)
        assert (code, err) == (0, ""), f"{shlex.join(command)}: {err}"
        assert out
    assert png_size((tmp_path / "spring_fair.png").read_bytes())
    assert len((tmp_path / "followers.csv").read_text(encoding="utf-8").splitlines()) == 1 + 4
    assert platform.qrcodes.permanent_count == 1 and len(platform.media.uploads) == 1
    assert platform.counters["menu_create"] == 1 and platform.menus.default is None  # deleted


@pytest.fixture
def orders_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The README's handler as an importable module."""
    code = _block("operating-handler")
    assert code.startswith("# handlers/orders.py\n")
    (tmp_path / "readme_orders.py").write_text(code, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "readme_orders"
    sys.modules.pop("readme_orders", None)


async def test_the_template_handler_works_as_shown(
    wechat_bot: BotFactory, orders_module: str, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await wechat_bot(handlers=[orders_module, "handlers.greeting"])
    reply = await bot.send_text("o_demo_wang", "shipped SF123")
    assert reply.content == "Parcel SF123: notice sent."
    sent = bot.fake.notices.templates_sent
    assert sent[-1]["data"]["character_string2"] == {"value": "SF123"}
    assert sent[-1]["client_msg_id"] == "shipped-SF123"

    too_long = await bot.send_text("o_demo_wang", "shipped " + "x" * 21)
    assert too_long.content is not None
    assert too_long.content.startswith("Not sent: data.character_string2.value: at most 20")

    bot.fake.fail_with_errcode("template_send", 48001)
    refused = await bot.send_text("o_demo_wang", "shipped SF124")
    assert refused.content == (
        "Not sent: this API is not authorised for the account (most need a verified account)"
    )
    assert len(sent) == 1

    result = await bot.send_event(
        "o_demo_wang", "TEMPLATESENDJOBFINISH", None, MsgID="200163836", Status="failed:user block"
    )
    assert result.is_success
    assert "template message 200163836 not delivered: failed:user block" in caplog.text
