"""`wechat-bot demo` and `wechat-bot simulate`: the bot answering without a WeChat account.

The demo starts the project's fake WeChat API and the bot in this process, then sends each
typed line through the real HTTP path as a signed push from a demo follower.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import sys
import tempfile
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from bot.config import Config, load_config, with_overrides
from bot.demo.session import (
    DEMO_AES_KEY,
    DEMO_APP_ID,
    DEMO_SECRET,
    DEMO_TOKEN,
    DemoSession,
)
from bot.testing.fake_wechat import DEMO_FOLLOWERS, FakeWeChat, start_fake_wechat
from bot.testing.simulator import BotReply, WeChatSimulator
from bot.wechat.crypto import MessageCrypto

SCRIPT: tuple[str, ...] = ("/follow", "你好", "叫我小王", "你好", "language en", "hello")

HELP = """Type a message and press Enter; the bot's reply is printed.
  /as OPENID   switch follower ({followers})
  /follow      send a subscribe event      /unfollow   send an unsubscribe event
  /click KEY   send a menu CLICK event     /quit       leave"""


def demo_config(config_path: str | None, fake_url: str, data_dir: str, safe: bool) -> Config:
    """The user's config (account name, greetings, handlers) with the demo's credentials."""
    env: dict[str, str] = {
        k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "REDIS_URL"))
    }
    env.update(
        WECHAT_TOKEN=DEMO_TOKEN,
        WECHAT_APP_ID=DEMO_APP_ID,
        WECHAT_APP_SECRET=DEMO_SECRET,
        WECHAT_API_BASE_URL=fake_url,
        BOT_DATA_DIR=data_dir,
    )
    if safe:
        env["WECHAT_ENCODING_AES_KEY"] = DEMO_AES_KEY
    return load_config(config_path, env)


def with_demo_web_authorization(config: Config, bot_port: int, fake_url: str) -> Config:
    """`config` with web authorization on against the fake's consent page (the web demo)."""
    section = dataclasses.replace(
        config.web_authorization,
        enabled=True,
        public_url=f"http://127.0.0.1:{bot_port}",
        oauth_base_url=fake_url,
    )
    return with_overrides(config, web_authorization=section)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def run_demo(
    *, config_path: str | None, port: int, safe: bool, web_page: bool, interactive: bool
) -> int:
    """Serve the bot against the fake API and chat with it (or play the script)."""
    from bot.logs import configure_logging
    from bot.webhook.app import create_app

    configure_logging("text", "WARNING")
    fake = FakeWeChat()
    fake_runner, fake_url = await start_fake_wechat(fake=fake)
    with tempfile.TemporaryDirectory(prefix="wechat-bot-demo-") as data_dir:
        config = demo_config(config_path, fake_url, data_dir, safe)
        page_port = 0 if port == 0 else port + 1
        if web_page:  # the page can walk web authorization through the fake's consent screen
            port = port or _free_port()
            config = with_demo_web_authorization(config, port, fake_url)
        runner = web.AppRunner(create_app(config), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        host, bound = runner.addresses[0][:2]
        bot_url = f"http://{host}:{bound}{config.webhook_path}"
        try:
            async with aiohttp.ClientSession() as session:
                crypto = MessageCrypto(DEMO_AES_KEY, DEMO_APP_ID) if safe else None
                simulator = WeChatSimulator(
                    session,
                    bot_url,
                    token=DEMO_TOKEN,
                    mode="safe" if safe else "plain",
                    crypto=crypto,
                )
                demo = DemoSession(fake, simulator, bot_url)
                print(
                    f"Bot on {bot_url} (fake WeChat API on {fake_url}"
                    f"{', safe mode' if safe else ''}); you are {demo.openid}."
                )
                if web_page:
                    from bot.demo.web import configured_menu, serve_emulator

                    return await serve_emulator(
                        demo,
                        port=page_port,
                        account_name=config.account_name,
                        menu=configured_menu(config),
                    )
                if interactive:
                    return await _chat(demo)
                return await _play(demo, SCRIPT)
        finally:
            await runner.cleanup()
            await fake_runner.cleanup()


async def send_line(demo: DemoSession, line: str) -> str | None:
    """Send one typed line (a message or a /command); the printable answer, None to quit."""
    line = line.strip()
    if line in ("/quit", "/exit"):
        return None
    if line.startswith("/as"):
        openid = line[3:].strip()
        if not openid:
            return "usage: /as OPENID"
        demo.openid = openid
        return f"(you are now {openid})"
    if line == "/follow":
        return describe(await demo.simulator.follow(demo.openid))
    if line == "/unfollow":
        return describe(await demo.simulator.send_event(demo.openid, "unsubscribe"))
    if line.startswith("/click"):
        return describe(await demo.simulator.send_event(demo.openid, "CLICK", line[6:].strip()))
    if line == "/help":
        return HELP.format(followers=", ".join(f.openid for f in DEMO_FOLLOWERS))
    if not line:
        return ""
    return describe(await demo.simulator.send_text(demo.openid, line))


def describe(reply: BotReply) -> str:
    """A reply as a follower would see it, on one or a few lines."""
    if reply.status != 200:
        return f"[HTTP {reply.status}] {reply.body.strip()}"
    if reply.is_success:
        return "(no reply)"
    fields: Mapping[str, object] = reply.fields
    kind = reply.msg_type
    lock = " [encrypted]" if reply.encrypted else ""
    if kind == "text":
        return f"{reply.content}{lock}"
    if kind == "news":
        articles = fields.get("Articles")
        items = articles if isinstance(articles, list) else []
        titles = [str(a.get("Title", "")) for a in items if isinstance(a, Mapping)]
        return f"[news] {' | '.join(titles)}{lock}"
    if kind == "transfer_customer_service":
        return f"[handed over to a human agent]{lock}"
    return f"[{kind}]{lock}"


async def _play(demo: DemoSession, script: tuple[str, ...]) -> int:
    for line in script:
        answer = await send_line(demo, line)
        print(f"{demo.openid} > {line}")
        print(f"bot > {answer}")
    return 0


async def _chat(demo: DemoSession) -> int:
    print(HELP.format(followers=", ".join(f.openid for f in DEMO_FOLLOWERS)))
    loop = asyncio.get_running_loop()
    while True:
        print(f"{demo.openid} > ", end="", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return 0
        answer = await send_line(demo, line)
        if answer is None:
            return 0
        if answer:
            print(f"bot > {answer}")


async def simulate_once(
    *,
    url: str,
    token: str,
    openid: str,
    text: str,
    event: str | None,
    key: str | None,
    aes_key: str | None,
    app_id: str,
) -> int:
    """Send one signed push to `url`, print the parsed reply; exit code 0 on HTTP 200."""
    crypto = MessageCrypto(aes_key, app_id) if aes_key else None
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        simulator = WeChatSimulator(
            session, url, token=token, mode="safe" if crypto else "plain", crypto=crypto
        )
        try:
            if event:
                reply = await simulator.send_event(openid, event, key)
            else:
                reply = await simulator.send_text(openid, text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            print(f"wechat-bot: cannot reach {url}: {exc or type(exc).__name__}", file=sys.stderr)
            return 1
    print(describe(reply))
    return 0 if reply.status == 200 else 1
