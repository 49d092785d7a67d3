"""What both demo front ends share: the demo's credentials and the running session."""

from __future__ import annotations

from dataclasses import dataclass

from bot.testing.fake_wechat import FakeWeChat
from bot.testing.simulator import WeChatSimulator

DEMO_TOKEN = "demotoken"  # noqa: S105 -- the demo's own server token
DEMO_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
DEMO_APP_ID = "wx_fake_app"
DEMO_SECRET = "fake_secret"  # noqa: S105 -- the fake API's own credential
DEMO_FOLLOWER = "o_demo_wang"


@dataclass
class DemoSession:
    """A running demo: the fake API, the bot's URL and a simulator signing pushes to it.

    Both front ends (the terminal chat and the web emulator) drive one of these.
    """

    fake: FakeWeChat
    simulator: WeChatSimulator
    bot_url: str
    openid: str = DEMO_FOLLOWER
