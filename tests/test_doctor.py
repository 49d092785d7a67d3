"""`wechat-bot check-config`: each token-endpoint answer, explained, over loopback HTTP."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis_fixtures
import yaml
from support import free_port

from bot.cli.doctor import EXIT_INVALID_CONFIG, EXIT_OK, EXIT_PROBLEM, caller_ip, check_config
from bot.testing.fake_wechat import FakeWeChat, start_fake_wechat
from bot.testing.pytest_plugin import TEST_AES_KEY

APP_ID = "wx_doctor_app"
SECRET = "doctor_secret_5f3a"  # the fake's credential
SERVER_TOKEN = "doctortoken42"
REPO = Path(__file__).resolve().parent.parent

redis_url = redis_fixtures.redis_url  # the session's Redis (skips when none can be had)


@pytest.fixture
async def platform() -> AsyncIterator[tuple[FakeWeChat, str]]:
    """The fake WeChat API on a real loopback port, and its base URL."""
    fake = FakeWeChat(app_id=APP_ID, app_secret=SECRET)
    runner, base_url = await start_fake_wechat(fake=fake)
    yield fake, base_url
    await runner.cleanup()


def write_config(tmp_path: Path, **settings: Any) -> Path:
    """A config file (so the repository's own config.yaml is never read)."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"account_name": "Doctor", **settings}), encoding="utf-8")
    return path


def environment(base_url: str, **overrides: str) -> dict[str, str]:
    """The variables a deployment would set, pointing at `base_url`."""
    env = {
        "WECHAT_TOKEN": SERVER_TOKEN,
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": SECRET,
        "WECHAT_API_BASE_URL": base_url,
    }
    env.update(overrides)
    return env


async def run_doctor(config: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run the check in process; (exit code, output)."""
    out = io.StringIO()
    code = await check_config(str(config), environ=env, out=out)
    return code, out.getvalue()


def problem_lines(output: str) -> list[str]:
    """The lines that report a problem."""
    return [line for line in output.splitlines() if line.startswith("✗")]


async def current_stable_token(base_url: str) -> str:
    """The token the fake holds (stable_token returns the same one while it is valid)."""
    body = {"grant_type": "client_credential", "appid": APP_ID, "secret": SECRET}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/cgi-bin/stable_token", json=body) as resp,
    ):
        token = (await resp.json())["access_token"]
    assert isinstance(token, str)
    return token


# -- a healthy account ---------------------------------------------------------------------------


async def test_ok_reports_the_token_lifetime_and_never_the_token_or_secrets(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    fake, base_url = platform
    code, output = await run_doctor(write_config(tmp_path), environment(base_url))
    assert code == EXIT_OK, output
    assert fake.counters["stable_token"] == 1
    assert fake.counters["token"] == 0
    assert (
        f"✓ access token obtained from {base_url}/cgi-bin/stable_token; it expires in 7200 s"
        in output.splitlines()
    )
    assert problem_lines(output) == []
    assert "    app_secret = ***" in output.splitlines()
    assert "    token = ***" in output.splitlines()
    assert f"    app_id = {APP_ID}" in output.splitlines()
    assert "    account_name = Doctor" in output.splitlines()
    token = await current_stable_token(base_url)
    for secret in (token, SECRET, SERVER_TOKEN):
        assert secret not in output


async def test_legacy_endpoint_is_asked_when_configured_and_its_cost_is_explained(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    fake, base_url = platform
    config = write_config(tmp_path, token_endpoint="legacy")
    code, output = await run_doctor(config, environment(base_url))
    assert code == EXIT_OK, output
    assert fake.counters == {"token": 1}
    assert f"✓ access token obtained from {base_url}/cgi-bin/token; it expires in 7200 s" in output
    assert "legacy endpoint issues a new token on every call" in output


async def test_aes_key_set_says_safe_mode_is_available(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    _, base_url = platform
    env = environment(base_url, WECHAT_ENCODING_AES_KEY=TEST_AES_KEY)
    code, output = await run_doctor(write_config(tmp_path), env)
    assert code == EXIT_OK, output
    assert "✓ EncodingAESKey is set: safe and compatible mode are available" in output
    assert TEST_AES_KEY not in output
    assert "    encoding_aes_key = ***" in output.splitlines()


async def test_no_aes_key_notes_plaintext_only_without_failing(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    _, base_url = platform
    code, output = await run_doctor(write_config(tmp_path), environment(base_url))
    assert code == EXIT_OK
    assert "plaintext mode only" in output
    assert "safe and compatible mode are available" not in output


# -- the platform's refusals ---------------------------------------------------------------------


async def test_wrong_appid_is_explained(platform: tuple[FakeWeChat, str], tmp_path: Path) -> None:
    _, base_url = platform
    env = environment(base_url, WECHAT_APP_ID="wx_not_this_one")
    code, output = await run_doctor(write_config(tmp_path), env)
    assert code == EXIT_PROBLEM
    assert problem_lines(output) == [
        "✗ WeChat does not know the AppID 'wx_not_this_one' (errcode 40013): copy it from the "
        "console's Settings and Development > Basic Configuration into WECHAT_APP_ID"
    ]


async def test_wrong_secret_is_explained_without_echoing_it(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    _, base_url = platform
    env = environment(base_url, WECHAT_APP_SECRET="not_the_secret_9e1")
    code, output = await run_doctor(write_config(tmp_path), env)
    assert code == EXIT_PROBLEM
    (line,) = problem_lines(output)
    assert line.startswith("✗ the AppSecret is wrong (errcode 40125)")
    assert "WECHAT_APP_SECRET" in line
    assert "not_the_secret_9e1" not in output


@pytest.mark.parametrize("errcode", [40164, 61004])
async def test_ip_not_whitelisted_names_the_ip_to_add(
    platform: tuple[FakeWeChat, str], tmp_path: Path, errcode: int
) -> None:
    fake, base_url = platform
    fake.fail_with_errcode(
        "stable_token",
        errcode,
        errmsg="invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 6650f0a1",
    )
    code, output = await run_doctor(write_config(tmp_path), environment(base_url))
    assert code == EXIT_PROBLEM
    (line,) = problem_lines(output)
    assert f"(errcode {errcode})" in line
    assert "this machine's IP 203.0.113.7 is not in the account's IP whitelist" in line
    assert "add 203.0.113.7 to the IP whitelist in the WeChat console" in line


async def test_ip_not_whitelisted_without_an_ip_in_errmsg_still_says_what_to_do(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    fake, base_url = platform
    fake.fail_with_errcode("stable_token", 61004, errmsg="access clientip is not registered")
    code, output = await run_doctor(write_config(tmp_path), environment(base_url))
    assert code == EXIT_PROBLEM
    (line,) = problem_lines(output)
    assert "add its public IP to the IP whitelist in the WeChat console" in line


async def test_frozen_secret_is_explained(platform: tuple[FakeWeChat, str], tmp_path: Path) -> None:
    fake, base_url = platform
    fake.fail_with_errcode("stable_token", 40243, errmsg="AppSecret已被冻结")
    code, output = await run_doctor(write_config(tmp_path), environment(base_url))
    assert code == EXIT_PROBLEM
    assert problem_lines(output) == [
        "✗ the AppSecret is frozen (errcode 40243): unfreeze or reset it in the console's "
        "Basic Configuration"
    ]


async def test_risky_ip_awaiting_the_admin_is_explained(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    fake, base_url = platform
    fake.fail_with_errcode(
        "stable_token", 89503, errmsg="risky ip 198.51.100.4, waiting for admin confirm rid: x"
    )
    code, output = await run_doctor(write_config(tmp_path), environment(base_url))
    assert code == EXIT_PROBLEM
    (line,) = problem_lines(output)
    assert "IP 198.51.100.4" in line
    assert "(errcode 89503)" in line
    assert "administrator confirms" in line


async def test_daily_quota_is_explained(platform: tuple[FakeWeChat, str], tmp_path: Path) -> None:
    fake, base_url = platform
    fake.fail_with_errcode("stable_token", 45009, errmsg="reach max api daily quota limit")
    code, output = await run_doctor(write_config(tmp_path), environment(base_url))
    assert code == EXIT_PROBLEM
    (line,) = problem_lines(output)
    assert line.startswith("✗ the token endpoint's daily quota (500,000 calls) is used up")
    assert "(errcode 45009)" in line


async def test_other_errcodes_are_reported_with_the_platforms_words(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    fake, base_url = platform
    fake.fail_with_errcode("stable_token", 40002, errmsg="invalid grant_type")
    code, output = await run_doctor(write_config(tmp_path), environment(base_url))
    assert code == EXIT_PROBLEM
    assert problem_lines(output) == [
        "✗ WeChat refused the token request: errcode 40002: invalid grant_type"
    ]


async def test_system_busy_is_explained(platform: tuple[FakeWeChat, str], tmp_path: Path) -> None:
    fake, base_url = platform
    fake.fail_with_errcode("stable_token", -1, errmsg="system error")
    code, output = await run_doctor(write_config(tmp_path), environment(base_url))
    assert code == EXIT_PROBLEM
    assert problem_lines(output) == [
        "✗ WeChat is busy (errcode -1): run check-config again in a moment"
    ]


# -- the network -----------------------------------------------------------------------------------


async def test_unreachable_base_url_is_reported(tmp_path: Path) -> None:
    base_url = f"http://127.0.0.1:{free_port()}"  # a closed local port
    code, output = await run_doctor(write_config(tmp_path), environment(base_url))
    assert code == EXIT_PROBLEM
    assert problem_lines(output) == [
        f"✗ cannot reach {base_url}: the connection failed (check the URL, DNS, firewall or proxy)"
    ]


async def test_a_silent_api_times_out_within_api_timeout(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    fake, base_url = platform
    fake.set_latency("stable_token", 3.0)
    config = write_config(tmp_path, api_timeout=0.2, profile_timeout=0.1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    code, output = await run_doctor(config, environment(base_url))
    assert loop.time() - started < 2.5  # bounded by api_timeout, not by the server's 3 s
    assert code == EXIT_PROBLEM
    assert problem_lines(output) == [f"✗ cannot reach {base_url}: no answer within 0.2 s"]


async def test_http_errors_are_reported(platform: tuple[FakeWeChat, str], tmp_path: Path) -> None:
    fake, base_url = platform
    fake.fail_with_status("stable_token", 502)
    code, output = await run_doctor(write_config(tmp_path), environment(base_url))
    assert code == EXIT_PROBLEM
    assert problem_lines(output) == [f"✗ cannot reach {base_url}: the server answered HTTP 502"]


async def test_a_base_url_that_is_not_the_wechat_api_is_reported(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    _, base_url = platform
    wrong = f"{base_url}/not-wechat"  # answers 404 HTML
    code, output = await run_doctor(write_config(tmp_path), environment(wrong))
    assert code == EXIT_PROBLEM
    assert problem_lines(output) == [
        f"✗ {wrong} answered, but not like the WeChat API (unusable answer (HTTP 404)): "
        "check api_base_url"
    ]


# -- Redis ---------------------------------------------------------------------------------------


async def test_unreachable_redis_is_a_problem_and_its_password_stays_masked(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    _, base_url = platform
    url = f"redis://:hunter2pw@127.0.0.1:{free_port()}/0"
    config = write_config(tmp_path, redis_timeout=0.2)
    code, output = await run_doctor(config, environment(base_url, REDIS_URL=url))
    assert code == EXIT_PROBLEM
    assert "✓ access token obtained" in output  # the token check still ran and passed
    (line,) = problem_lines(output)
    assert line.startswith("✗ Redis does not answer: ")
    assert f"redis://:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in line
    assert "hunter2pw" not in output


async def test_reachable_redis_is_reported(
    platform: tuple[FakeWeChat, str], tmp_path: Path, redis_url: str
) -> None:
    _, base_url = platform
    code, output = await run_doctor(
        write_config(tmp_path), environment(base_url, REDIS_URL=redis_url)
    )
    assert code == EXIT_OK, output
    assert "✓ Redis answered a PING at " in output


# -- invalid configuration -----------------------------------------------------------------------


async def test_invalid_config_prints_the_error_line_and_exits_2_without_calling_wechat(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    fake, base_url = platform
    env = environment(base_url)
    del env["WECHAT_TOKEN"]
    code, output = await run_doctor(write_config(tmp_path), env)
    assert code == EXIT_INVALID_CONFIG
    assert output == "✗ config: token: missing (set WECHAT_TOKEN)\n"
    assert fake.counters == {}


async def test_invalid_setting_in_the_file_exits_2(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    _, base_url = platform
    config = write_config(tmp_path, reply_budget=6)
    code, output = await run_doctor(config, environment(base_url))
    assert code == EXIT_INVALID_CONFIG
    assert output == "✗ config: reply_budget: must be under 5 seconds (WeChat gives up at 5)\n"


async def test_handler_module_without_a_router_exits_2(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    _, base_url = platform
    config = write_config(tmp_path, handlers=["bot.wechat.signature"])
    code, output = await run_doctor(config, environment(base_url))
    assert code == EXIT_INVALID_CONFIG
    assert (
        output == "✗ config: handlers: module 'bot.wechat.signature' has no `router = Router()`\n"
    )


# -- the command line ----------------------------------------------------------------------------


async def _run_cli(config: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """`python -m bot check-config --config …` as a subprocess, with only our variables set."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "BOT_", "REDIS_"))
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check-config",
        "--config",
        str(config),
        cwd=REPO,
        env={**inherited, **env, "PYTHONIOENCODING": "utf-8"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # the fake keeps serving on this loop while the subprocess asks it
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_cli_check_config_exits_0_on_a_healthy_account(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    fake, base_url = platform
    code, stdout, stderr = await _run_cli(write_config(tmp_path), environment(base_url))
    assert code == 0, stdout + stderr
    assert f"✓ access token obtained from {base_url}/cgi-bin/stable_token" in stdout
    assert SECRET not in stdout + stderr
    assert fake.counters["stable_token"] == 1


async def test_cli_check_config_exits_1_on_a_refusal_and_2_on_invalid_config(
    platform: tuple[FakeWeChat, str], tmp_path: Path
) -> None:
    fake, base_url = platform
    fake.fail_with_errcode("stable_token", 40164, errmsg="invalid ip 192.0.2.55, not in whitelist")
    code, stdout, _ = await _run_cli(write_config(tmp_path), environment(base_url))
    assert code == 1
    assert "add 192.0.2.55 to the IP whitelist in the WeChat console" in stdout
    code, stdout, _ = await _run_cli(write_config(tmp_path), environment(base_url, PORT="0"))
    assert code == 2
    assert stdout == "✗ config: port: must be between 1 and 65535\n"


# -- the IP in the platform's errmsg ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("errmsg", "ip"),
    [
        ("invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist rid: 6650f0a1", "1.2.3.4"),
        ("invalid ip ::ffff:203.0.113.9, not in whitelist", "203.0.113.9"),
        ("invalid ip 2001:db8::7 ipv6 2001:db8::7, not in whitelist", "2001:db8::7"),
        ("access clientip is not registered requestIP: 198.51.100.2 hint: [x]", "198.51.100.2"),
        ("not in whitelist, caller ip 10.0.0.1.", "10.0.0.1"),
        ("access clientip is not registered hint: [abc] rid: 1", None),
        ("invalid ip 999.1.1.1, not in whitelist", None),
        ("", None),
    ],
)
def test_caller_ip_is_taken_from_the_errmsg(errmsg: str, ip: str | None) -> None:
    assert caller_ip(errmsg) == ip
