"""The `wechat-bot` command: serve, demo, simulate, check-config."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from bot.config import Config, ConfigError, load_config, with_overrides
from bot.logs import configure_logging
from bot.storage.base import StorageUnavailable
from bot.wechat.crypto import validate_encoding_aes_key


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `wechat-bot` and `python -m bot`."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code = args.run(args)
    except ConfigError as exc:
        print(f"wechat-bot: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wechat-bot", description="WeChat Official Account bot")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the webhook server")
    serve.add_argument("--config", help="config file (default: $BOT_CONFIG or ./config.yaml)")
    serve.add_argument("--host", help="address to listen on (default: config host)")
    serve.add_argument("--port", type=int, help="port (default: $PORT or config port)")
    serve.set_defaults(run=_serve)

    demo = sub.add_parser("demo", help="chat with the bot against the built-in fake WeChat API")
    demo.add_argument("--config", help="config file for account name and greetings")
    demo.add_argument("--port", type=int, default=0, help="port for the bot (default: any free)")
    demo.add_argument("--safe", action="store_true", help="speak safe mode (AES) to the bot")
    demo.add_argument("--web", action="store_true", help="serve a chat page in the browser")
    demo.add_argument("--script", action="store_true", help="play the scripted conversation")
    demo.set_defaults(run=_demo)

    simulate = sub.add_parser("simulate", help="send one signed message to a running bot")
    simulate.add_argument("--url", required=True, help="the bot's webhook URL")
    simulate.add_argument("--token", help="server token (default: $WECHAT_TOKEN or config)")
    simulate.add_argument("--openid", default="o_demo_wang", help="sender OpenID")
    simulate.add_argument("--event", help="send this event (e.g. subscribe, CLICK) instead of text")
    simulate.add_argument("--key", help="EventKey for --event")
    simulate.add_argument("--safe", action="store_true", help="encrypt (safe mode)")
    simulate.add_argument("--aes-key", help="EncodingAESKey (default: $WECHAT_ENCODING_AES_KEY)")
    simulate.add_argument("--app-id", help="AppID for safe mode (default: $WECHAT_APP_ID)")
    simulate.add_argument("text", nargs="?", default="", help="the message text")
    simulate.set_defaults(run=_simulate)

    check = sub.add_parser("check-config", help="validate config and ask WeChat for a token")
    check.add_argument("--config", help="config file")
    check.set_defaults(run=_check_config)
    return parser


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    if overrides:
        config = with_overrides(config, **overrides)
    configure_logging(config.log_format, config.log_level)
    _use_uvloop()
    from bot.server.serve import serve

    try:
        asyncio.run(serve(config))
    except StorageUnavailable as exc:
        # Start-up opens Redis and refuses to run without it; the message masks the password.
        print(f"wechat-bot: redis: {exc}", file=sys.stderr)
        return 2
    return 0


def _demo(args: argparse.Namespace) -> int:
    from bot.demo.terminal import run_demo

    interactive = sys.stdin.isatty() and not args.script
    return asyncio.run(
        run_demo(
            config_path=args.config,
            port=args.port,
            safe=args.safe,
            web_page=args.web,
            interactive=interactive,
        )
    )


def _simulate(args: argparse.Namespace) -> int:
    from bot.demo.terminal import simulate_once

    token = args.token or os.environ.get("WECHAT_TOKEN") or _config_value("token")
    if not token:
        raise ConfigError("token", "missing (pass --token or set WECHAT_TOKEN)")
    aes_key = (
        args.aes_key
        or os.environ.get("WECHAT_ENCODING_AES_KEY")
        or _config_value("encoding_aes_key")
    )
    app_id = args.app_id or os.environ.get("WECHAT_APP_ID") or _config_value("app_id")
    if args.safe and not (aes_key and app_id):
        raise ConfigError("encoding_aes_key", "safe mode needs --aes-key and --app-id")
    if args.safe:
        try:
            validate_encoding_aes_key(aes_key)
        except ValueError as exc:
            raise ConfigError("encoding_aes_key", str(exc)) from None
    return asyncio.run(
        simulate_once(
            url=args.url,
            token=token,
            openid=args.openid,
            text=args.text,
            event=args.event,
            key=args.key,
            aes_key=aes_key if args.safe else None,
            app_id=app_id,
        )
    )


def _config_value(name: str) -> str:
    """A setting from the config file, without validating the rest (simulate needs only one)."""
    try:
        config: Config = load_config()
    except ConfigError:
        return ""
    return str(getattr(config, name))


def _check_config(args: argparse.Namespace) -> int:
    from bot.cli.doctor import check_config

    return asyncio.run(check_config(args.config))


def _use_uvloop() -> None:
    """uvloop is an optional speed-up: used when installed."""
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()
