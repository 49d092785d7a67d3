"""Configuration: `config.yaml` for settings, the environment for secrets (the environment wins).

Every setting is one field of `Config`, documented in place; `SETTINGS` lists them with their YAML
key, environment variable and description, and the README's configuration reference is checked
against it by a test so the two cannot drift.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from bot.client.errors import LimitError
from bot.client.menus import MenuSet
from bot.webauth.settings import (
    SUB_FIELDS,
    WebAuthorization,
    WebAuthorizationError,
    coerce_sub_setting,
    parse_web_authorization,
    validate_web_authorization,
)
from bot.wechat.crypto import validate_encoding_aes_key

LANGUAGES = ("zh_CN", "zh_TW", "en")

DEFAULT_GREETINGS: dict[str, tuple[str, str]] = {
    "zh_CN": ("你好，{name}！欢迎关注{account}。", "你好！欢迎关注{account}。"),
    "zh_TW": ("你好，{name}！歡迎關注{account}。", "你好！歡迎關注{account}。"),
    "en": ("Hello, {name}! Welcome to {account}.", "Hello! Welcome to {account}."),
}


class ConfigError(Exception):
    """Invalid configuration; str() is one line naming the key and what is wrong."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config: {key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Greeting:
    """The two greeting templates of one language."""

    with_name: str
    without_name: str


def _setting(doc: str, env: str | None = None, secret: bool = False) -> dict[str, Any]:
    return {"doc": doc, "env": env, "secret": secret}


def _default_greetings() -> dict[str, Greeting]:
    return {lang: Greeting(*pair) for lang, pair in DEFAULT_GREETINGS.items()}


@dataclass(frozen=True, slots=True)
class Config:
    """Every setting of the bot; build it with `load_config`."""

    token: str = field(
        default="",
        metadata=_setting("Server token entered in the WeChat console.", "WECHAT_TOKEN", True),
    )
    app_id: str = field(default="", metadata=_setting("The account's AppID.", "WECHAT_APP_ID"))
    app_secret: str = field(
        default="", metadata=_setting("The account's AppSecret.", "WECHAT_APP_SECRET", True)
    )
    encoding_aes_key: str = field(
        default="",
        metadata=_setting(
            "EncodingAESKey (43 characters) for safe/compatible mode; empty: plaintext only.",
            "WECHAT_ENCODING_AES_KEY",
            True,
        ),
    )
    encoding_aes_key_previous: str = field(
        default="",
        metadata=_setting(
            "The key before the last rotation, still accepted for decryption.",
            "WECHAT_ENCODING_AES_KEY_PREVIOUS",
            True,
        ),
    )
    safe_mode_only: bool = field(
        default=False,
        metadata=_setting(
            "Reject plaintext requests (the account is in safe mode).", "BOT_SAFE_MODE_ONLY"
        ),
    )
    api_base_url: str = field(
        default="https://api.weixin.qq.com",
        metadata=_setting(
            "WeChat API base URL (point it at the fake API for tests).", "WECHAT_API_BASE_URL"
        ),
    )
    mp_base_url: str = field(
        default="https://mp.weixin.qq.com",
        metadata=_setting(
            "Where the platform serves QR-code images (point it at the fake API for tests).",
            "WECHAT_MP_BASE_URL",
        ),
    )
    token_endpoint: str = field(
        default="stable",
        metadata=_setting("`stable` (/cgi-bin/stable_token) or `legacy` (/cgi-bin/token)."),
    )
    account_name: str = field(
        default="our account", metadata=_setting("Display name the greetings use.")
    )
    default_language: str = field(
        default="zh_CN",
        metadata=_setting("Language when nothing else is known: zh_CN, zh_TW or en."),
    )
    greetings: Mapping[str, Greeting] = field(
        default_factory=_default_greetings,
        metadata=_setting(
            "Per language: `with_name` and `without_name` templates ({name}, {account})."
        ),
    )
    menu: MenuSet | None = field(
        default=None,
        metadata=_setting(
            "The custom menu in the platform's shape (`button`, optional `conditional`); "
            "`wechat-bot menu push` creates it."
        ),
    )
    web_authorization: WebAuthorization = field(
        default_factory=WebAuthorization,
        metadata=_setting(
            "Web authorization (snsapi_userinfo): greet by the follower's real WeChat nickname, "
            "with their consent; the `web_authorization.*` rows below."
        ),
    )
    webhook_path: str = field(default="/wechat", metadata=_setting("Path of the webhook."))
    handlers: tuple[str, ...] = field(
        default=("handlers.greeting",),
        metadata=_setting("Handler modules in priority order.", "BOT_HANDLERS"),
    )
    host: str = field(default="0.0.0.0", metadata=_setting("Address to listen on.", "HOST"))  # noqa: S104
    fast_path: bool = field(
        default=True,
        metadata=_setting(
            "Answer pushes on the lean HTTP path (`bot.server.fastpath`); "
            "false: all through aiohttp.",
            "BOT_FAST_PATH",
        ),
    )
    port: int = field(default=8080, metadata=_setting("Port to listen on.", "PORT"))
    data_dir: str = field(
        default="data",
        metadata=_setting("Where the embedded store keeps its SQLite file.", "BOT_DATA_DIR"),
    )
    redis_url: str = field(
        default="",
        metadata=_setting("Redis for several instances; empty: embedded store.", "REDIS_URL", True),
    )
    api_timeout: float = field(default=3.0, metadata=_setting("Seconds for one WeChat API call."))
    api_max_attempts: int = field(
        default=3, metadata=_setting("Attempts for a transient API failure.")
    )
    profile_timeout: float = field(
        default=1.0, metadata=_setting("Seconds a reply waits for a follower's profile.")
    )
    reply_budget: float = field(
        default=4.0,
        metadata=_setting(
            "Seconds before a slow handler's reply moves to the customer-service API."
        ),
    )
    delivery_deadline: float = field(
        default=60.0,
        metadata=_setting("Seconds a late reply keeps retrying its customer-service send."),
    )
    customer_service: str = field(
        default="auto",
        metadata=_setting(
            "`auto`, `on` or `off`: whether late answers use the customer-service API; `auto`"
            " turns it off by itself when the platform answers 48001 (unverified account).",
            "BOT_CUSTOMER_SERVICE",
        ),
    )
    pending_ttl: float = field(
        default=172800.0,
        metadata=_setting(
            "Seconds an undelivered answer waits for the follower's next message before it expires."
        ),
    )
    pending_per_follower: int = field(
        default=10,
        metadata=_setting("Answers kept waiting per follower (over that, the oldest is dropped)."),
    )
    shutdown_grace: float = field(
        default=10.0, metadata=_setting("Seconds to finish in-flight work on SIGTERM.")
    )
    profile_cache_size: int = field(default=10_000, metadata=_setting("Profiles kept in memory."))
    profile_cache_ttl: float = field(
        default=3600.0, metadata=_setting("Seconds a profile is cached.")
    )
    dedup_size: int = field(default=10_000, metadata=_setting("Messages remembered for retries."))
    dedup_ttl: float = field(
        default=60.0, metadata=_setting("Seconds a message is remembered (>= 30).")
    )
    timestamp_window: float = field(
        default=300.0, metadata=_setting("Accepted clock skew in seconds; 0 disables the check.")
    )
    nonce_check: bool = field(
        default=True, metadata=_setting("Reject a nonce seen within the window.")
    )
    nonce_cache_size: int = field(default=100_000, metadata=_setting("Nonces remembered."))
    max_body_bytes: int = field(default=65_536, metadata=_setting("Largest request body accepted."))
    storage_max_entries: int = field(
        default=100_000,
        metadata=_setting("Entries in the in-memory store (dedup, nonces, tokens)."),
    )
    redis_timeout: float = field(
        default=0.5,
        metadata=_setting(
            "Seconds for one Redis call (tried twice at most); at most a quarter of"
            " `reply_budget` when Redis is used."
        ),
    )
    log_format: str = field(default="text", metadata=_setting("`text` or `json`.", "LOG_FORMAT"))
    log_level: str = field(default="INFO", metadata=_setting("Logging level.", "LOG_LEVEL"))

    def greeting(self, language: str) -> Greeting:
        """The templates of `language`, falling back to the default language."""
        return self.greetings.get(language) or self.greetings[self.default_language]

    def redacted(self) -> dict[str, Any]:
        """Settings for display, with secrets masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                value = "***"
            if isinstance(value, MenuSet):
                value = _menu_summary(value)
            if isinstance(value, WebAuthorization):
                value = _web_authorization_summary(value)
            out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the configuration reference."""

    key: str
    env: str | None
    default: str
    doc: str


def _settings() -> tuple[Setting, ...]:
    defaults = Config()
    rows = []
    for f in fields(Config):
        value = getattr(defaults, f.name)
        if f.name == "greetings":
            shown = "see config.yaml"
        elif value is None:
            shown = ""
        elif isinstance(value, tuple):
            shown = ", ".join(value)
        elif isinstance(value, WebAuthorization):
            shown = "see below"
        else:
            shown = str(value)
        rows.append(Setting(f.name, f.metadata.get("env"), shown, f.metadata["doc"]))
        if isinstance(value, WebAuthorization):
            rows.extend(_section_rows(f.name, value))
    return tuple(rows)


def _section_rows(section: str, value: WebAuthorization) -> list[Setting]:
    rows = []
    for name, f in SUB_FIELDS.items():
        sub = getattr(value, name)
        if isinstance(sub, bool):
            shown = str(sub).lower()
        elif isinstance(sub, Mapping):
            shown = "see config.yaml"
        else:
            shown = str(sub)
        rows.append(Setting(f"{section}.{name}", f.metadata.get("env"), shown, f.metadata["doc"]))
    return rows


SETTINGS: tuple[Setting, ...] = _settings()
_FIELDS = {f.name: f for f in fields(Config)}


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read `path` (or $BOT_CONFIG, or ./config.yaml), apply the environment, validate."""
    env = os.environ if environ is None else environ
    chosen = path or env.get("BOT_CONFIG") or None
    data: dict[str, Any] = {}
    if chosen is not None:
        data = _read_yaml(Path(chosen))
    elif Path("config.yaml").is_file():
        data = _read_yaml(Path("config.yaml"))
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in _FIELDS:
            raise ConfigError(str(key), "unknown setting")
        values[key] = _coerce(key, raw)
    for name, f in _FIELDS.items():
        var = f.metadata.get("env")
        if var and env.get(var, "") != "":
            values[name] = _coerce(name, env[var])
    values["web_authorization"] = _section_from_env(values.get("web_authorization"), env)
    config = Config(**values)
    validate(config)
    return config


def with_overrides(config: Config, **changes: Any) -> Config:
    """A validated copy of `config` with some settings changed."""
    for key in changes:
        if key not in _FIELDS:
            raise ConfigError(key, "unknown setting")
    coerced = {k: _coerce(k, v) for k, v in changes.items()}
    updated = replace(config, **coerced)
    validate(updated)
    return updated


def _section_from_env(section: WebAuthorization | None, env: Mapping[str, str]) -> WebAuthorization:
    """`web_authorization` with its sub-settings' environment variables applied."""
    changes: dict[str, Any] = {}
    for name, f in SUB_FIELDS.items():
        var = f.metadata.get("env")
        if var and env.get(var, "") != "":
            try:
                changes[name] = coerce_sub_setting(name, env[var])
            except WebAuthorizationError as exc:
                raise ConfigError(exc.key, exc.problem) from None
    return replace(section or WebAuthorization(), **changes)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("BOT_CONFIG", f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(str(path), f"not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "must be a mapping of settings")
    return data


def _coerce(key: str, raw: Any) -> Any:
    default = getattr(Config(), key)
    if key == "greetings":
        return _coerce_greetings(raw)
    if key == "menu":
        if raw is None:
            return None
        try:
            return MenuSet.from_config(raw)
        except LimitError as exc:
            raise ConfigError(exc.field, exc.problem) from None
    if key == "web_authorization":
        try:
            return parse_web_authorization(raw)
        except WebAuthorizationError as exc:
            raise ConfigError(exc.key, exc.problem) from None
    if key == "handlers":
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise ConfigError(key, "must be a list of module names")
        return tuple(i.strip() for i in items if i.strip())
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(key, f"must be true or false, not {raw!r}")
    if isinstance(default, int | float):
        if isinstance(raw, bool):
            raise ConfigError(key, f"must be a number, not {raw!r}")
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(key, f"must be a number, not {raw!r}") from None
        if not math.isfinite(number):
            raise ConfigError(key, f"must be a finite number, not {raw!r}")
        if isinstance(default, int):
            if not number.is_integer():
                raise ConfigError(key, f"must be a whole number, not {raw!r}")
            return int(number)
        return number
    if raw is None:
        return ""
    if not isinstance(raw, str | int | float):
        raise ConfigError(key, "must be a string")
    return str(raw)


def _coerce_greetings(raw: Any) -> dict[str, Greeting]:
    if not isinstance(raw, dict):
        raise ConfigError("greetings", "must map languages to {with_name, without_name}")
    result = _default_greetings()
    for lang, pair in raw.items():
        if lang not in LANGUAGES:
            raise ConfigError(f"greetings.{lang}", f"unknown language (use {', '.join(LANGUAGES)})")
        if not isinstance(pair, dict) or not all(
            isinstance(pair.get(k), str) for k in ("with_name", "without_name")
        ):
            raise ConfigError(f"greetings.{lang}", "needs with_name and without_name strings")
        result[lang] = Greeting(pair["with_name"], pair["without_name"])
    return result


_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")


def validate(config: Config) -> None:
    """Raise ConfigError for the first invalid setting."""
    if not config.token:
        raise ConfigError("token", "missing (set WECHAT_TOKEN)")
    if not re.fullmatch(r"[A-Za-z0-9]{3,32}", config.token):
        raise ConfigError(
            "token", "must be 3 to 32 letters or digits, as the WeChat console requires"
        )
    if not config.app_id:
        raise ConfigError("app_id", "missing (set WECHAT_APP_ID)")
    if not config.app_secret:
        raise ConfigError("app_secret", "missing (set WECHAT_APP_SECRET)")
    for key in ("encoding_aes_key", "encoding_aes_key_previous"):
        value = getattr(config, key)
        if value:
            _check_aes_key(key, value)
    if config.encoding_aes_key_previous and not config.encoding_aes_key:
        raise ConfigError("encoding_aes_key_previous", "set without encoding_aes_key")
    if config.safe_mode_only and not config.encoding_aes_key:
        raise ConfigError("safe_mode_only", "needs encoding_aes_key")
    for key in ("api_base_url", "mp_base_url"):
        if not getattr(config, key).startswith(("http://", "https://")):
            raise ConfigError(key, "must start with http:// or https://")
    if config.token_endpoint not in ("stable", "legacy"):
        raise ConfigError("token_endpoint", "must be stable or legacy")
    if config.default_language not in LANGUAGES:
        raise ConfigError("default_language", f"must be one of {', '.join(LANGUAGES)}")
    if not _PATH_RE.fullmatch(config.webhook_path):
        raise ConfigError("webhook_path", "must be a path starting with /")
    if config.webhook_path in ("/healthz", "/metrics") or config.webhook_path.startswith("/oauth/"):
        raise ConfigError("webhook_path", "clashes with a built-in route")
    _check_greetings(config)
    try:
        validate_web_authorization(config.web_authorization)
    except WebAuthorizationError as exc:
        raise ConfigError(exc.key, exc.problem) from None
    if not config.handlers:
        raise ConfigError("handlers", "at least one handler module is needed")
    for module in config.handlers:
        if not re.fullmatch(r"[A-Za-z_][\w.]*", module) or _find_spec(module) is None:
            raise ConfigError("handlers", f"unknown handler module {module!r}")
    if not 0 < config.port < 65536:
        raise ConfigError("port", "must be between 1 and 65535")
    positive = (
        "api_timeout",
        "profile_timeout",
        "reply_budget",
        "shutdown_grace",
        "delivery_deadline",
        "profile_cache_ttl",
        "redis_timeout",
        "pending_ttl",
    )
    for key in positive:
        if getattr(config, key) <= 0:
            raise ConfigError(key, "must be greater than 0")
    if config.reply_budget >= 5.0:
        raise ConfigError("reply_budget", "must be under 5 seconds (WeChat gives up at 5)")
    if config.profile_timeout >= config.reply_budget:
        raise ConfigError("profile_timeout", "must be shorter than reply_budget")
    if config.redis_url and 4 * config.redis_timeout > config.reply_budget:
        # a call may wait for a pooled connection, then be tried twice: all within the budget
        raise ConfigError("redis_timeout", "must be at most a quarter of reply_budget")
    for key in (
        "api_max_attempts",
        "profile_cache_size",
        "dedup_size",
        "nonce_cache_size",
        "max_body_bytes",
        "storage_max_entries",
        "pending_per_follower",
    ):
        if getattr(config, key) < 1:
            raise ConfigError(key, "must be at least 1")
    if config.customer_service not in ("auto", "on", "off"):
        raise ConfigError("customer_service", "must be auto, on or off")
    if config.dedup_ttl < 30:
        raise ConfigError("dedup_ttl", "must be at least 30 seconds (WeChat retries for 15)")
    if config.timestamp_window < 0:
        raise ConfigError("timestamp_window", "must be 0 (off) or more")
    if not isinstance(logging.getLevelName(config.log_level.upper()), int):
        raise ConfigError("log_level", "must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    if config.log_format not in ("text", "json"):
        raise ConfigError("log_format", "must be text or json")
    if config.redis_url and not config.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("redis_url", "must start with redis://, rediss:// or unix://")


def _web_authorization_summary(section: WebAuthorization) -> str:
    public_url = section.public_url or '""'
    return (
        f"enabled={str(section.enabled).lower()}, public_url={public_url}, "
        f"oauth_base_url={section.oauth_base_url}, state_ttl={section.state_ttl:g}"
    )


def _menu_summary(menu: MenuSet) -> str:
    buttons = len(menu.default.buttons) if menu.default else 0
    return f"{buttons} top-level button(s), {len(menu.conditional)} conditional menu(s)"


def _check_aes_key(key: str, value: str) -> None:
    try:
        validate_encoding_aes_key(value)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None


def _check_greetings(config: Config) -> None:
    if config.default_language not in config.greetings:
        raise ConfigError("greetings", f"no templates for {config.default_language}")
    for lang, greeting in config.greetings.items():
        for which in ("with_name", "without_name"):
            template = getattr(greeting, which)
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
                if all(f in ("name", "account") for f in fields):
                    template.format(name="x", account="y")  # format specs such as {name:d}
            except ValueError:
                fields = ["?"]
            if any(f not in ("name", "account") for f in fields):
                raise ConfigError(f"greetings.{lang}.{which}", "may only use {name} and {account}")


def _find_spec(module: str) -> object | None:
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


def reference_markdown() -> str:
    """The configuration reference as a Markdown table, one row per `SETTINGS` entry.

    README.md carries this text between its `config-reference` markers; a test keeps them equal.
    """
    lines = [
        "| key | env | default | description |",
        "|---|---|---|---|",
    ]
    for s in SETTINGS:
        env = f"`{s.env}`" if s.env else "—"
        default = _default_cell(s)
        top = _FIELDS.get(s.key)
        doc = s.doc + (" Secret." if top is not None and top.metadata.get("secret") else "")
        cells = (f"`{s.key}`", env, default, doc)
        # a pipe or a line break inside a cell would end the cell or the row
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _default_cell(setting: Setting) -> str:
    value: Any = Config()
    for part in setting.key.split("."):
        value = getattr(value, part)
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"  # as YAML spells it
    if setting.default.startswith("see ") or not setting.default:
        return setting.default or "(empty)"
    return f"`{setting.default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
