"""The `wechat-bot` command: serve, demo, simulate, check-config, and the operator commands
(menu, qrcode, media, followers)."""

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

    menu = sub.add_parser("menu", help="the custom menu of config.yaml's `menu:`")
    menu_sub = menu.add_subparsers(dest="menu_command", required=True)
    push = menu_sub.add_parser("push", help="check the menu against the handlers, then create it")
    push.add_argument("--config", help="config file")
    push.add_argument("--dry-run", action="store_true", help="print the JSON instead of sending")
    push.set_defaults(run=_menu_push)
    show = menu_sub.add_parser("show", help="print the live menu")
    show.add_argument("--config", help="config file")
    show.set_defaults(run=_menu_show)
    delete = menu_sub.add_parser("delete", help="delete the menu (and every conditional menu)")
    delete.add_argument("--config", help="config file")
    delete.set_defaults(run=_menu_delete)

    qrcode = sub.add_parser("qrcode", help="parameter QR codes")
    qrcode_sub = qrcode.add_subparsers(dest="qrcode_command", required=True)
    create = qrcode_sub.add_parser("create", help="create a QR code carrying a scene")
    create.add_argument("--config", help="config file")
    create.add_argument("--scene", required=True, help="digits: an integer scene; else a string")
    lifetime = create.add_mutually_exclusive_group()
    lifetime.add_argument("--expires", type=int, help="seconds it lives (default 30 days)")
    lifetime.add_argument("--permanent", action="store_true", help="a code that never expires")
    create.add_argument("--out", help="save the image to this file (e.g. poster.png)")
    create.set_defaults(run=_qrcode_create)

    media = sub.add_parser("media", help="upload media")
    media_sub = media.add_subparsers(dest="media_command", required=True)
    upload = media_sub.add_parser("upload", help="upload a file; prints its media_id")
    upload.add_argument("--config", help="config file")
    upload.add_argument("file", help="the file (PNG/JPEG/GIF, AMR/MP3, MP4)")
    upload.add_argument(
        "--type", required=True, choices=("image", "voice", "video", "thumb"), dest="kind"
    )
    upload.add_argument("--permanent", action="store_true", help="permanent material")
    upload.add_argument("--title", default="", help="a permanent video's title")
    upload.add_argument("--introduction", default="", help="a permanent video's introduction")
    upload.set_defaults(run=_media_upload)

    followers = sub.add_parser("followers", help="the account's followers")
    followers_sub = followers.add_subparsers(dest="followers_command", required=True)
    export = followers_sub.add_parser("export", help="every follower to a CSV file")
    export.add_argument("--config", help="config file")
    export.add_argument("--out", required=True, help="the CSV file to write")
    export.add_argument(
        "--concurrency", type=int, default=4, help="profile calls at once (default 4)"
    )
    export.set_defaults(run=_followers_export)
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


def _menu_push(args: argparse.Namespace) -> int:
    from bot.cli.menus import push

    return asyncio.run(push(load_config(args.config), dry_run=args.dry_run))


def _menu_show(args: argparse.Namespace) -> int:
    from bot.cli.menus import show

    return asyncio.run(show(load_config(args.config)))


def _menu_delete(args: argparse.Namespace) -> int:
    from bot.cli.menus import delete

    return asyncio.run(delete(load_config(args.config)))


def _qrcode_create(args: argparse.Namespace) -> int:
    from bot.cli.qrcodes import create

    config = load_config(args.config)
    return asyncio.run(
        create(
            config, scene=args.scene, expires=args.expires, permanent=args.permanent, out=args.out
        )
    )


def _media_upload(args: argparse.Namespace) -> int:
    from bot.cli.media import upload

    config = load_config(args.config)
    return asyncio.run(
        upload(
            config,
            file=args.file,
            kind=args.kind,
            permanent=args.permanent,
            title=args.title,
            introduction=args.introduction,
        )
    )


def _followers_export(args: argparse.Namespace) -> int:
    from bot.cli.followers_export import export

    config = load_config(args.config)
    return asyncio.run(export(config, out=args.out, concurrency=args.concurrency))


def _use_uvloop() -> None:
    """uvloop is an optional speed-up: used when installed."""
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()
