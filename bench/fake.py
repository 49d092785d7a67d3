"""The fake WeChat API in its own process, knowing the bench followers.

python -m bench.fake --port 8081 --followers 500
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence

from aiohttp import web

from bench.corpus import follower_openid
from bot.testing.fake_wechat import DEMO_FOLLOWERS, FakeFollower, FakeWeChat


def bench_followers(count: int) -> Iterator[FakeFollower]:
    """`count` followers as today's platform returns them; every third has an operator remark."""
    for i in range(count):
        yield FakeFollower(follower_openid(i), remark=f"Bench {i}" if i % 3 == 0 else "")


def make_fake(followers: int, app_id: str, app_secret: str) -> FakeWeChat:
    """The demo followers plus `followers` bench followers."""
    return FakeWeChat(
        app_id=app_id,
        app_secret=app_secret,
        followers=(*DEMO_FOLLOWERS, *bench_followers(followers)),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the fake until interrupted."""
    parser = argparse.ArgumentParser(description="fake WeChat API with bench followers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--followers", type=int, default=500)
    parser.add_argument("--app-id", default="wx_fake_app")
    parser.add_argument("--app-secret", default="fake_secret")
    args = parser.parse_args(argv)
    fake = make_fake(args.followers, args.app_id, args.app_secret)
    web.run_app(fake.app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
