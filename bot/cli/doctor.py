"""`wechat-bot check-config`: validate the configuration, then ask WeChat whether it agrees.

It loads the settings as `serve` would, shows them with secrets masked, asks the real token
endpoint for a token (never printing it) and explains the answer in plain words: a wrong AppID
or AppSecret, an IP missing from the whitelist, a frozen secret, the daily quota, or a network
that cannot reach the API. With Redis configured it pings Redis too; with web authorization
on it says what the console needs (the 网页授权域名, an https public URL, the account type).
Exit code: 0 when all is well, 1 on any problem, 2 when the configuration itself is invalid.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import aiohttp

from bot.client.api import ERR_BAD_ANSWER, ERR_TRANSPORT, WeChatAPI
from bot.client.tokens import TokenError
from bot.config import Config, ConfigError, load_config
from bot.routing.dispatch import load_router
from bot.storage import MemoryStorage, RedisStorage, StorageUnavailable, masked_url
from bot.webauth.guidance import web_authorization_report

OK = "✓"
PROBLEM = "✗"
NOTE = "·"

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_INVALID_CONFIG = 2

# The platform names the caller's IP in its errmsg: "invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, ..."
_IP_IN_ERRMSG = re.compile(
    r"(?:\bip(?:v6)?|requestip|clientip)(?:\s*[:=](?!:))?\s*([0-9A-Fa-f:.]{2,45})", re.IGNORECASE
)
_IP_NOT_WHITELISTED = frozenset({40164, 61004})


async def check_config(
    config_path: str | None,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> int:
    """Check the configuration and the account's credentials; returns the exit code.

    `environ` defaults to the process environment and `out` to stdout.
    """
    stream = out or sys.stdout

    def say(mark: str, line: str) -> None:
        print(f"{mark} {line}", file=stream, flush=True)

    try:
        config = load_config(config_path, environ)
        load_router(config.handlers)  # import errors surface here, as they would at start-up
    except ConfigError as exc:
        say(PROBLEM, str(exc))
        return EXIT_INVALID_CONFIG
    except Exception as exc:  # a handler module that fails to import for any other reason
        say(PROBLEM, f"config: handlers: importing failed: {type(exc).__name__}: {exc}")
        return EXIT_INVALID_CONFIG
    say(OK, "configuration is valid; effective settings (secrets masked):")
    for key, value in config.redacted().items():
        print(f"    {key} = {_display(key, value)}", file=stream)

    results = [await _check_token(config)]
    say(*results[-1])
    if config.token_endpoint == "legacy":  # noqa: S105 -- an endpoint name
        say(
            NOTE,
            "the legacy endpoint issues a new token on every call: running instances' tokens "
            "stop working within 5 minutes (they fetch a new one when refused); "
            "token_endpoint: stable avoids this",
        )
    if config.redis_url:
        results.append(await _check_redis(config))
        say(*results[-1])
    if config.encoding_aes_key:
        say(OK, "EncodingAESKey is set: safe and compatible mode are available")
    else:
        say(
            NOTE,
            "no EncodingAESKey: plaintext mode only (set WECHAT_ENCODING_AES_KEY for safe mode)",
        )
    for mark, line in web_authorization_report(config):
        say(mark, line)
        results.append((mark, line))
    return EXIT_PROBLEM if any(mark == PROBLEM for mark, _ in results) else EXIT_OK


def _display(key: str, value: Any) -> str:
    if key == "greetings" and isinstance(value, Mapping):
        return ", ".join(value)
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value) if value != "" else '""'


async def _check_token(config: Config) -> tuple[str, str]:
    """Ask the configured token endpoint for a token; (mark, explanation)."""
    base = config.api_base_url.rstrip("/")
    path = "/cgi-bin/stable_token" if config.token_endpoint == "stable" else "/cgi-bin/token"  # noqa: S105
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=config.api_timeout))
    try:
        api = WeChatAPI(
            session,
            app_id=config.app_id,
            app_secret=config.app_secret,
            storage=MemoryStorage(1),  # unused: fetch_token bypasses the token cache
            base_url=base,
            timeout=config.api_timeout,
            token_endpoint="legacy" if config.token_endpoint == "legacy" else "stable",  # noqa: S105
            max_attempts=1,  # one question, one answer: the doctor reports, it does not insist
        )
        # the outer bound covers what a per-request timeout may not (a stuck DNS lookup)
        async with asyncio.timeout(config.api_timeout + 1.0):
            _token, expires_in = await api.fetch_token(False)
    except TokenError as exc:
        return PROBLEM, explain_token_error(exc, config)
    except TimeoutError:
        return PROBLEM, f"cannot reach {base}: no answer within {config.api_timeout:g} s"
    finally:
        await session.close()
    return OK, f"access token obtained from {base}{path}; it expires in {expires_in} s"


def explain_token_error(exc: TokenError, config: Config) -> str:
    """The token endpoint's refusal (or silence) in plain words, with what to do about it."""
    code, errmsg = exc.errcode, exc.errmsg
    base = config.api_base_url.rstrip("/")
    if code == ERR_TRANSPORT:
        return f"cannot reach {base}: {_transport_reason(errmsg, config.api_timeout)}"
    if code == ERR_BAD_ANSWER:
        return f"{base} answered, but not like the WeChat API ({errmsg}): check api_base_url"
    if code == -1:
        return "WeChat is busy (errcode -1): run check-config again in a moment"
    if code == 40013:
        return (
            f"WeChat does not know the AppID {config.app_id!r} (errcode 40013): copy it from "
            "the console's Settings and Development > Basic Configuration into WECHAT_APP_ID"
        )
    if code == 40125:
        return (
            "the AppSecret is wrong (errcode 40125): copy (or reset) it in the console's "
            "Basic Configuration and set WECHAT_APP_SECRET"
        )
    if code in _IP_NOT_WHITELISTED:
        ip = caller_ip(errmsg)
        return (
            f"this machine's IP {ip or '(not named by WeChat)'} is not in the account's IP "
            f"whitelist (errcode {code}): add {ip or 'its public IP'} to the IP whitelist "
            "in the WeChat console (Basic Configuration > IP whitelist)"
        )
    if code == 40243:
        return (
            "the AppSecret is frozen (errcode 40243): unfreeze or reset it in the console's "
            "Basic Configuration"
        )
    if code == 89503:
        ip = caller_ip(errmsg)
        who = f"IP {ip}" if ip else "this machine's IP"
        return (
            f"WeChat holds calls from {who} as risky until an administrator confirms them "
            "(errcode 89503): the admin confirms in the WeChat message from the platform, "
            "then run check-config again"
        )
    if code == 45009:
        limit = "500,000" if config.token_endpoint == "stable" else "2,000"  # noqa: S105
        return (
            f"the token endpoint's daily quota ({limit} calls) is used up (errcode 45009): "
            "wait for the reset at midnight (Beijing time) or clear the quota in the console"
        )
    return f"WeChat refused the token request: errcode {code}: {errmsg}"


def caller_ip(errmsg: str) -> str | None:
    """The caller's IP the platform names in a whitelist refusal, IPv4 when it is mapped."""
    for candidate in _IP_IN_ERRMSG.findall(errmsg):
        for text in (candidate, candidate.rstrip(".")):  # "... ip 1.2.3.4." ends a sentence
            try:
                ip = ipaddress.ip_address(text)
            except ValueError:
                continue
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ip)
    return None


def _transport_reason(errmsg: str, timeout: float) -> str:
    """bot.client.api reports transport failures by exception name; say what that means."""
    if "Timeout" in errmsg:
        return f"no answer within {timeout:g} s"
    if errmsg.startswith("HTTP "):
        return f"the server answered {errmsg}"
    if "Connector" in errmsg or "Connection" in errmsg:
        return "the connection failed (check the URL, DNS, firewall or proxy)"
    if "Disconnected" in errmsg:
        return "the connection was closed without an answer"
    return errmsg


async def _check_redis(config: Config) -> tuple[str, str]:
    """PING the configured Redis; (mark, explanation) with the URL's password masked."""
    shown = masked_url(config.redis_url)
    try:
        async with asyncio.timeout(config.redis_timeout * 4 + 1.0):  # connect + one retry, bounded
            storage = await RedisStorage.connect(
                config.redis_url, f"wechat-bot:{config.app_id}", timeout=config.redis_timeout
            )
    except StorageUnavailable as exc:
        return PROBLEM, f"Redis does not answer: {exc}"
    except TimeoutError:
        return PROBLEM, f"Redis does not answer: no PING reply from {shown}"
    await storage.close()
    return OK, f"Redis answered a PING at {shown}"
