"""The `wechat-bot` command as a user runs it: `python -m bot ...` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import counting_handlers
import pytest
from support import run_cli

from bot.demo.terminal import SCRIPT
from bot.testing.pytest_plugin import TEST_AES_KEY, TEST_APP_ID, BotFactory

TIMEOUT = 60.0  # generous: a cold interpreter start plus the demo's six round trips
# Settings a developer's shell may carry; each test states exactly the ones it wants
_INHERITED = ("WECHAT_", "BOT_", "REDIS_URL", "LOG_")
_INHERITED_EXACT = ("PORT", "HOST")
OTHER_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"


def _env(**settings: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_INHERITED) and k not in _INHERITED_EXACT
    }
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(settings)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,  # no tty: the demo plays its script
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        check=False,
    )


SERVE_ENV = {"WECHAT_TOKEN": "tok123", "WECHAT_APP_ID": TEST_APP_ID, "WECHAT_APP_SECRET": "s"}


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        (
            {**SERVE_ENV, "WECHAT_ENCODING_AES_KEY": TEST_AES_KEY[:42]},
            "wechat-bot: config: encoding_aes_key: "
            "EncodingAESKey must be 43 base64 characters (got 42)",
        ),
        (
            {**SERVE_ENV, "WECHAT_ENCODING_AES_KEY": "!" * 43},
            "wechat-bot: config: encoding_aes_key: "
            "EncodingAESKey must contain only base64 characters",
        ),
        (
            {
                **SERVE_ENV,
                "WECHAT_ENCODING_AES_KEY": TEST_AES_KEY,
                "WECHAT_ENCODING_AES_KEY_PREVIOUS": "short",
            },
            "wechat-bot: config: encoding_aes_key_previous: "
            "EncodingAESKey must be 43 base64 characters (got 5)",
        ),
        (
            {"WECHAT_APP_ID": TEST_APP_ID, "WECHAT_APP_SECRET": "s"},
            "wechat-bot: config: token: missing (set WECHAT_TOKEN)",
        ),
    ],
    ids=["aes_key_42_chars", "aes_key_not_base64", "previous_key_short", "no_token"],
)
def test_serve_refuses_bad_config_with_one_line(
    tmp_path: Path, settings: dict[str, str], line: str
) -> None:
    result = _run(["serve", "--port", "1"], tmp_path, _env(**settings))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line]
    assert result.stdout == ""


def test_demo_safe_without_a_tty_plays_the_script(tmp_path: Path) -> None:
    result = _run(["demo", "--safe"], tmp_path, _env())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Bot on http://127.0.0.1:") and "safe mode" in lines[0]
    asked = [line for line in lines if line.startswith("o_demo_wang > ")]
    answers = [line for line in lines if line.startswith("bot > ")]
    assert asked == [f"o_demo_wang > {line}" for line in SCRIPT]
    assert len(answers) == len(SCRIPT)
    # every answer came back encrypted and was opened; none is an HTTP error
    assert all(a.endswith(" [encrypted]") for a in answers), answers
    assert answers[2] == "bot > 好的，以后就叫你小王。 [encrypted]"
    assert "小王" in answers[-1]


async def test_simulate_safe_talks_to_a_running_bot(wechat_bot: BotFactory, tmp_path: Path) -> None:
    counting_handlers.received.clear()
    bot = await wechat_bot(mode="safe", handlers=["counting_handlers"], safe_mode_only=True)
    url = str(bot.client.make_url(bot.config.webhook_path))
    assert url.startswith("http://127.0.0.1:")
    common = ["simulate", "--url", url, "--token", bot.config.token]
    safe = [*common, "--safe", "--aes-key", TEST_AES_KEY, "--app-id", TEST_APP_ID]

    code, out, err = await run_cli([*safe, "hello from simulate"], tmp_path, _env())
    assert (code, out, err) == (0, "got hello from simulate [encrypted]\n", "")
    assert counting_handlers.received == ["hello from simulate"]

    # the same key material through the environment
    env = _env(WECHAT_ENCODING_AES_KEY=TEST_AES_KEY, WECHAT_APP_ID=TEST_APP_ID)
    code, out, _ = await run_cli([*common, "--safe", "via env"], tmp_path, env)
    assert (code, out) == (0, "got via env [encrypted]\n")

    # the wrong key: the bot cannot decrypt, and simulate says so
    wrong = [*common, "--safe", "--aes-key", OTHER_KEY, "--app-id", TEST_APP_ID, "x"]
    code, out, _ = await run_cli(wrong, tmp_path, _env())
    assert code == 1 and out.startswith("[HTTP 400] cannot decrypt")

    # plaintext to a safe-mode-only bot is refused
    code, out, _ = await run_cli([*common, "plain"], tmp_path, _env())
    assert code == 1 and out.startswith("[HTTP 403]")
    assert counting_handlers.received == ["hello from simulate", "via env"]
    counting_handlers.received.clear()


def test_simulate_safe_without_a_key_is_a_config_error(tmp_path: Path) -> None:
    args = ["simulate", "--url", "http://127.0.0.1:9/wechat", "--token", "tok123", "--safe", "x"]
    result = _run(args, tmp_path, _env())
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "wechat-bot: config: encoding_aes_key: safe mode needs --aes-key and --app-id"
    ]
