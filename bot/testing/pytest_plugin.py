"""pytest fixtures for bots built on this framework (registered automatically on install).

    async def test_weather(wechat_bot: BotFactory) -> None:
        bot = await wechat_bot(handlers=["handlers.weather"])
        reply = await bot.send_text("o_demo_wang", "weather Paris")
        assert reply.content == "Sunny in Paris"

`wechat_bot(...)` serves the bot on a test server against the project's fake WeChat API
(`bot.fake`: counters, sent customer-service messages, fault injection) and returns a
simulator that signs — and in `mode="safe"` encrypts — every push like WeChat does.
`wechat_bot(web_authorization=True)` serves it on a port known in advance, with web
authorization on: the redirect URI points at the bot and the authorize page at the fake.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.config import Config, load_config, with_overrides
from bot.testing.fake_wechat import FakeWeChat
from bot.testing.simulator import Mode, WeChatSimulator
from bot.webauth.settings import WebAuthorization
from bot.webhook.app import create_app
from bot.wechat.crypto import MessageCrypto

TEST_TOKEN = "testtoken"  # noqa: S105 -- a test server token
TEST_APP_ID = "wx_fake_app"
TEST_SECRET = "fake_secret"  # noqa: S105 -- the fake API's own credential
TEST_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


class BotUnderTest(WeChatSimulator):
    """A running bot with its fake WeChat API; send pushes with the simulator methods."""

    def __init__(
        self,
        simulator: WeChatSimulator,
        *,
        fake: FakeWeChat,
        config: Config,
        client: TestClient[Any, Any],
        app: web.Application,
    ) -> None:
        super().__init__(
            simulator.session,
            simulator.url,
            token=simulator.token,
            mode=simulator.mode,
            crypto=simulator.crypto,
            account=simulator.account,
        )
        self.fake = fake
        self.config = config
        self.client = client
        self.app = app


class BotFactory(Protocol):
    """The `wechat_bot` fixture: start a bot under test."""

    def __call__(
        self,
        *,
        handlers: Sequence[str] | None = None,
        mode: Mode = "plain",
        fake: FakeWeChat | None = None,
        config_file: str | Path | None = None,
        **settings: Any,
    ) -> Awaitable[BotUnderTest]: ...


@pytest.fixture
def fake_wechat() -> FakeWeChat:
    """The project's fake WeChat API, with the demo followers."""
    return FakeWeChat(app_id=TEST_APP_ID, app_secret=TEST_SECRET)


@pytest.fixture
async def wechat_bot(
    fake_wechat: FakeWeChat, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[BotUnderTest]]]:
    """A factory for bots under test (see the module docstring)."""
    started: list[TestClient[Any, Any]] = []
    servers: dict[int, TestServer] = {}

    async def start(
        *,
        handlers: Sequence[str] | None = None,
        mode: Mode = "plain",
        fake: FakeWeChat | None = None,
        config_file: str | Path | None = None,
        **settings: Any,
    ) -> BotUnderTest:
        fake = fake or fake_wechat
        server = servers.get(id(fake))
        if server is None:
            server = TestServer(fake.app)
            await server.start_server()
            servers[id(fake)] = server
        env = {
            "WECHAT_TOKEN": TEST_TOKEN,
            "WECHAT_APP_ID": fake.app_id,
            "WECHAT_APP_SECRET": fake.app_secret,
            "WECHAT_API_BASE_URL": str(server.make_url("")).rstrip("/"),
            "BOT_DATA_DIR": str(tmp_path / f"data{len(started)}"),
        }
        if mode != "plain":
            env["WECHAT_ENCODING_AES_KEY"] = TEST_AES_KEY
        config = load_config(config_file or _empty_config(tmp_path), env)
        if handlers is not None:
            settings["handlers"] = tuple(handlers)
        port = None
        if settings.get("web_authorization") is True:
            port = _free_port()
            settings["web_authorization"] = WebAuthorization(
                enabled=True,
                public_url=f"http://127.0.0.1:{port}",
                oauth_base_url=env["WECHAT_API_BASE_URL"],
            )
        if settings:
            config = with_overrides(config, **settings)
        app = create_app(config)
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1", port=port))
        await client.start_server()
        started.append(client)
        crypto = MessageCrypto(config.encoding_aes_key, config.app_id) if mode != "plain" else None
        simulator = WeChatSimulator(
            client.session,
            str(client.make_url(config.webhook_path)),
            token=config.token,
            mode=mode,
            crypto=crypto,
        )
        return BotUnderTest(simulator, fake=fake, config=config, client=client, app=app)

    yield start
    for client in reversed(started):
        await client.close()
    for server in servers.values():
        await server.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _empty_config(tmp_path: Path) -> Path:
    path = tmp_path / "empty-config.yaml"
    if not path.exists():
        path.write_text("account_name: Test Account\n", encoding="utf-8")
    return path
