"""Configuration: file values, the environment winning, coercion, and every validation rule."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from bot.config import (
    SETTINGS,
    Config,
    ConfigError,
    Greeting,
    load_config,
    reference_markdown,
    validate,
    with_overrides,
)

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OTHER_AES_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"
SECRET = "Sup3rS3cretValue"  # a test credential, checked never to leak
ENV = {"WECHAT_TOKEN": "tok123", "WECHAT_APP_ID": "wx_app", "WECHAT_APP_SECRET": SECRET}
VALID = Config(token="tok123", app_id="wx_app", app_secret=SECRET)


def write(tmp_path: Path, text: str) -> Path:
    """A config file holding `text`."""
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, **env: str) -> Config:
    """Load `text` as the config file with the base credentials plus `env`."""
    return load_config(write(tmp_path, text), {**ENV, **env})


def error_of(tmp_path: Path, text: str, **env: str) -> ConfigError:
    """The ConfigError loading `text` raises."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, **env)
    return info.value


# --- reading the file and the environment ---------------------------------------------------


def test_file_values_are_read_and_coerced(tmp_path: Path) -> None:
    text = (
        "account_name: Demo\nport: '9000'\napi_timeout: 2\nnonce_check: false\n"
        "handlers: [handlers.keywords, handlers.greeting]\n"
        "greetings:\n  en:\n    with_name: 'Hi {name} at {account}'\n    without_name: 'Hi'\n"
    )
    config = load(tmp_path, text)
    assert config.account_name == "Demo"
    assert config.port == 9000
    assert config.api_timeout == 2.0 and isinstance(config.api_timeout, float)
    assert config.nonce_check is False
    assert config.handlers == ("handlers.keywords", "handlers.greeting")
    assert config.greetings["en"] == Greeting("Hi {name} at {account}", "Hi")
    # languages the file leaves out keep their defaults
    assert config.greetings["zh_CN"] == Greeting(
        "你好，{name}！欢迎关注{account}。", "你好！欢迎关注{account}。"
    )
    assert (config.token, config.app_id, config.app_secret) == ("tok123", "wx_app", SECRET)


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config == VALID


@pytest.mark.parametrize(
    ("var", "key", "file_value", "env_value", "expected"),
    [
        ("WECHAT_TOKEN", "token", "filetok1", "envtok2", "envtok2"),
        ("WECHAT_APP_ID", "app_id", "wx_file", "wx_env", "wx_env"),
        ("WECHAT_APP_SECRET", "app_secret", "file_secret", "env_secret", "env_secret"),
        ("WECHAT_ENCODING_AES_KEY", "encoding_aes_key", AES_KEY, OTHER_AES_KEY, OTHER_AES_KEY),
        ("WECHAT_API_BASE_URL", "api_base_url", "http://file:1", "http://env:2", "http://env:2"),
        ("PORT", "port", "9000", "9001", 9001),
        ("HOST", "host", "127.0.0.1", "::1", "::1"),
        ("BOT_DATA_DIR", "data_dir", "/file", "/env", "/env"),
        ("REDIS_URL", "redis_url", "redis://file", "redis://env", "redis://env"),
        ("LOG_FORMAT", "log_format", "text", "json", "json"),
        ("LOG_LEVEL", "log_level", "INFO", "DEBUG", "DEBUG"),
    ],
)
def test_environment_wins_over_the_file(
    tmp_path: Path, var: str, key: str, file_value: str, env_value: str, expected: object
) -> None:
    config = load(tmp_path, f"{key}: '{file_value}'\n", **{var: env_value})
    assert getattr(config, key) == expected


def test_bot_handlers_replaces_the_file_list(tmp_path: Path) -> None:
    text = "handlers: [handlers.menu, handlers.greeting]\n"
    config = load(tmp_path, text, BOT_HANDLERS=" handlers.keywords , handlers.greeting,")
    assert config.handlers == ("handlers.keywords", "handlers.greeting")


def test_previous_key_and_safe_mode_from_the_environment(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "",
        WECHAT_ENCODING_AES_KEY=AES_KEY,
        WECHAT_ENCODING_AES_KEY_PREVIOUS=OTHER_AES_KEY,
        BOT_SAFE_MODE_ONLY="yes",
    )
    assert config.encoding_aes_key_previous == OTHER_AES_KEY
    assert config.safe_mode_only is True


@pytest.mark.parametrize("var", ["WECHAT_API_BASE_URL", "PORT", "LOG_FORMAT", "BOT_HANDLERS"])
def test_an_empty_environment_variable_does_not_override(tmp_path: Path, var: str) -> None:
    text = "api_base_url: http://file:1\nport: 9000\nlog_format: json\nhandlers: [handlers.menu]\n"
    config = load(tmp_path, text, **{var: ""})
    assert config.api_base_url == "http://file:1"
    assert config.port == 9000
    assert config.log_format == "json"
    assert config.handlers == ("handlers.menu",)


def test_bot_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "account_name: From BOT_CONFIG\n")
    config = load_config(None, {**ENV, "BOT_CONFIG": str(path)})
    assert config.account_name == "From BOT_CONFIG"


def test_path_argument_wins_over_bot_config(tmp_path: Path) -> None:
    chosen = write(tmp_path, "account_name: Chosen\n")
    ignored = tmp_path / "ignored.yaml"
    ignored.write_text("account_name: Ignored\n", encoding="utf-8")
    config = load_config(chosen, {**ENV, "BOT_CONFIG": str(ignored)})
    assert config.account_name == "Chosen"


def test_missing_file_named_by_bot_config(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(None, {**ENV, "BOT_CONFIG": str(missing)})
    assert (
        str(info.value) == f"config: BOT_CONFIG: cannot read {missing}: No such file or directory"
    )
    assert info.value.key == "BOT_CONFIG"


def test_without_path_reads_config_yaml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "account_name: Here\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(None, ENV).account_name == "Here"


def test_without_any_file_the_defaults_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(None, ENV) == VALID


def test_empty_bot_config_falls_back_to_config_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "account_name: Here\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(None, {**ENV, "BOT_CONFIG": ""}).account_name == "Here"


# --- malformed files --------------------------------------------------------------------------


def test_unknown_key_is_named(tmp_path: Path) -> None:
    err = error_of(tmp_path, "account_name: x\nreply_budgte: 3\n")
    assert str(err) == "config: reply_budgte: unknown setting"
    assert (err.key, err.problem) == ("reply_budgte", "unknown setting")


def test_yaml_syntax_error_is_one_line_with_the_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "account_name: ok\nport: 8080\n  bad: indent\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert str(info.value) == f"config: {path}: not valid YAML at line 3"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_file_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert str(info.value) == f"config: {path}: must be a mapping of settings"


def test_greetings_for_an_unknown_language(tmp_path: Path) -> None:
    text = "greetings:\n  fr:\n    with_name: 'Salut {name}'\n    without_name: 'Salut'\n"
    err = error_of(tmp_path, text)
    assert str(err) == "config: greetings.fr: unknown language (use zh_CN, zh_TW, en)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "greetings:\n  en:\n    with_name: 'Hi {name}'\n",
            "config: greetings.en: needs with_name and without_name strings",
        ),
        (
            "greetings: [en]\n",
            "config: greetings: must map languages to {with_name, without_name}",
        ),
        ("handlers: 7\n", "config: handlers: must be a list of module names"),
        ("account_name: [a, b]\n", "config: account_name: must be a string"),
    ],
)
def test_malformed_values(tmp_path: Path, text: str, message: str) -> None:
    assert str(error_of(tmp_path, text)) == message


# --- coercion -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("yes", True), ("on", True), ("1", True), ("TRUE", True), ("off", False), ("no", False)],
)
def test_bool_words(tmp_path: Path, raw: str, expected: bool) -> None:
    assert load(tmp_path, f"nonce_check: '{raw}'\n").nonce_check is expected


def test_bool_junk_is_a_config_error(tmp_path: Path) -> None:
    err = error_of(tmp_path, "nonce_check: 'maybe'\n")
    assert str(err) == "config: nonce_check: must be true or false, not 'maybe'"


def test_bool_junk_from_the_environment(tmp_path: Path) -> None:
    err = error_of(tmp_path, "", WECHAT_ENCODING_AES_KEY=AES_KEY, BOT_SAFE_MODE_ONLY="sure")
    assert str(err) == "config: safe_mode_only: must be true or false, not 'sure'"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("", {"PORT": "eighty"}, "config: port: must be a number, not 'eighty'"),
        ("api_timeout: fast\n", {}, "config: api_timeout: must be a number, not 'fast'"),
        ("port: [1]\n", {}, "config: port: must be a number, not [1]"),
        ("dedup_size: '1.5'\n", {}, "config: dedup_size: must be a whole number, not '1.5'"),
    ],
)
def test_number_junk_is_a_config_error(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    assert str(error_of(tmp_path, text, **env)) == message


@pytest.mark.parametrize("text", ["api_timeout: nan\n", "dedup_ttl: .nan\n", "api_timeout: .inf\n"])
def test_non_finite_numbers_are_refused(tmp_path: Path, text: str) -> None:
    error_of(tmp_path, text)


@pytest.mark.parametrize("text", ["port: true\n", "port: 8080.9\n", "api_max_attempts: 2.5\n"])
def test_integer_settings_refuse_non_integers(tmp_path: Path, text: str) -> None:
    error_of(tmp_path, text)


# --- validate(): every rule -----------------------------------------------------------------


def english(with_name: str, without_name: str) -> dict[str, Any]:
    """Changes replacing only the English greeting templates."""
    return {"greetings": {**VALID.greetings, "en": Greeting(with_name, without_name)}}


_TOKEN_RULE = "must be 3 to 32 letters or digits, as the WeChat console requires"
_AES_SIZE = "EncodingAESKey must be 43 base64 characters (got {})"
_TEMPLATE = "may only use {name} and {account}"


def test_a_slow_redis_timeout_is_only_refused_with_redis() -> None:
    # without Redis the setting is unused: a short reply budget must not trip over it
    validate(with_overrides(VALID, reply_budget=0.3, profile_timeout=0.1))


@pytest.mark.parametrize(
    ("changes", "key", "problem"),
    [
        ({"token": ""}, "token", "missing (set WECHAT_TOKEN)"),
        ({"token": "ab"}, "token", _TOKEN_RULE),
        ({"token": "a" * 33}, "token", _TOKEN_RULE),
        ({"token": "tok-123"}, "token", _TOKEN_RULE),
        ({"token": "tok 123"}, "token", _TOKEN_RULE),
        ({"app_id": ""}, "app_id", "missing (set WECHAT_APP_ID)"),
        ({"app_secret": ""}, "app_secret", "missing (set WECHAT_APP_SECRET)"),
        ({"encoding_aes_key": AES_KEY[:42]}, "encoding_aes_key", _AES_SIZE.format(42)),
        ({"encoding_aes_key": AES_KEY + "A"}, "encoding_aes_key", _AES_SIZE.format(44)),
        (
            {"encoding_aes_key": "!" * 43},
            "encoding_aes_key",
            "EncodingAESKey must contain only base64 characters",
        ),
        (
            {"encoding_aes_key": AES_KEY, "encoding_aes_key_previous": "short"},
            "encoding_aes_key_previous",
            _AES_SIZE.format(5),
        ),
        (
            {"encoding_aes_key_previous": AES_KEY},
            "encoding_aes_key_previous",
            "set without encoding_aes_key",
        ),
        ({"safe_mode_only": True}, "safe_mode_only", "needs encoding_aes_key"),
        ({"api_base_url": "ftp://x"}, "api_base_url", "must start with http:// or https://"),
        (
            {"api_base_url": "api.weixin.qq.com"},
            "api_base_url",
            "must start with http:// or https://",
        ),
        ({"token_endpoint": "new"}, "token_endpoint", "must be stable or legacy"),
        ({"default_language": "fr"}, "default_language", "must be one of zh_CN, zh_TW, en"),
        ({"webhook_path": "wechat"}, "webhook_path", "must be a path starting with /"),
        ({"webhook_path": "/we chat"}, "webhook_path", "must be a path starting with /"),
        ({"webhook_path": ""}, "webhook_path", "must be a path starting with /"),
        ({"webhook_path": "/healthz"}, "webhook_path", "clashes with a built-in route"),
        ({"webhook_path": "/metrics"}, "webhook_path", "clashes with a built-in route"),
        (english("Hi {nick}", "Hi"), "greetings.en.with_name", _TEMPLATE),
        (english("Hi {name}", "Hi {0}"), "greetings.en.without_name", _TEMPLATE),
        (english("Hi {", "Hi"), "greetings.en.with_name", _TEMPLATE),
        (english("Hi {name:d}", "Hi"), "greetings.en.with_name", _TEMPLATE),
        ({"greetings": {"en": Greeting("Hi", "Hi")}}, "greetings", "no templates for zh_CN"),
        ({"handlers": ()}, "handlers", "at least one handler module is needed"),
        ({"handlers": ("handlers.nope",)}, "handlers", "unknown handler module 'handlers.nope'"),
        (
            {"handlers": ("no_such_pkg_x.mod",)},
            "handlers",
            "unknown handler module 'no_such_pkg_x.mod'",
        ),
        ({"handlers": ("not a module",)}, "handlers", "unknown handler module 'not a module'"),
        ({"port": 0}, "port", "must be between 1 and 65535"),
        ({"port": 65536}, "port", "must be between 1 and 65535"),
        ({"api_timeout": 0.0}, "api_timeout", "must be greater than 0"),
        ({"profile_timeout": -1.0}, "profile_timeout", "must be greater than 0"),
        ({"reply_budget": 0.0}, "reply_budget", "must be greater than 0"),
        ({"shutdown_grace": 0.0}, "shutdown_grace", "must be greater than 0"),
        ({"delivery_deadline": 0.0}, "delivery_deadline", "must be greater than 0"),
        ({"profile_cache_ttl": 0.0}, "profile_cache_ttl", "must be greater than 0"),
        ({"redis_timeout": -0.5}, "redis_timeout", "must be greater than 0"),
        ({"reply_budget": 5.0}, "reply_budget", "must be under 5 seconds (WeChat gives up at 5)"),
        (
            {"reply_budget": 2.0, "profile_timeout": 2.0},
            "profile_timeout",
            "must be shorter than reply_budget",
        ),
        (
            {"redis_url": "redis://127.0.0.1:6379/0", "reply_budget": 4.0, "redis_timeout": 1.01},
            "redis_timeout",
            "must be at most a quarter of reply_budget",
        ),
        ({"api_max_attempts": 0}, "api_max_attempts", "must be at least 1"),
        ({"profile_cache_size": 0}, "profile_cache_size", "must be at least 1"),
        ({"dedup_size": 0}, "dedup_size", "must be at least 1"),
        ({"nonce_cache_size": 0}, "nonce_cache_size", "must be at least 1"),
        ({"max_body_bytes": 0}, "max_body_bytes", "must be at least 1"),
        ({"storage_max_entries": 0}, "storage_max_entries", "must be at least 1"),
        (
            {"dedup_ttl": 29.9},
            "dedup_ttl",
            "must be at least 30 seconds (WeChat retries for 15)",
        ),
        ({"timestamp_window": -1.0}, "timestamp_window", "must be 0 (off) or more"),
        ({"log_format": "xml"}, "log_format", "must be text or json"),
        (
            {"redis_url": "http://localhost:6379"},
            "redis_url",
            "must start with redis://, rediss:// or unix://",
        ),
    ],
)
def test_validate_rule(changes: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(replace(VALID, **changes))
    assert (info.value.key, info.value.problem) == (key, problem)
    assert str(info.value) == f"config: {key}: {problem}"


@pytest.mark.parametrize(
    "changes",
    [
        {"token": "abc"},
        {"token": "A1" * 16},
        {"encoding_aes_key": AES_KEY, "encoding_aes_key_previous": OTHER_AES_KEY},
        {"encoding_aes_key": AES_KEY, "safe_mode_only": True},
        {"port": 1},
        {"port": 65535},
        {"reply_budget": 4.99, "profile_timeout": 4.98},
        {"dedup_ttl": 30.0},
        {"timestamp_window": 0.0},
        {"webhook_path": "/"},
        {"redis_url": "redis://localhost:6379/0"},
        {"redis_url": "rediss://h"},
        {"redis_url": "unix:///tmp/redis.sock"},
        {"token_endpoint": "legacy"},
        {"log_format": "json"},
    ],
)
def test_boundary_values_are_accepted(changes: dict[str, Any]) -> None:
    validate(replace(VALID, **changes))  # raises on failure


@pytest.mark.parametrize("template", ["Hi {name.missing}", "Hi {name[a]}", "Hi {name.upper}"])
def test_greeting_field_with_attribute_or_index_is_refused(template: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(replace(VALID, **english(template, "Hi")))
    assert info.value.key == "greetings.en.with_name"


def test_webhook_path_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ConfigError):
        validate(replace(VALID, webhook_path="/wechat\n"))


def test_unknown_log_level_is_a_config_error(tmp_path: Path) -> None:
    assert error_of(tmp_path, "", LOG_LEVEL="LOUD").key == "log_level"


# --- secrets, overrides, the reference ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ("", {"WECHAT_TOKEN": "bad-" + SECRET}),
        ("", {"WECHAT_ENCODING_AES_KEY": SECRET * 3}),
        ("", {"WECHAT_ENCODING_AES_KEY": "!" + SECRET * 2 + "x" * 10}),
        ("", {"REDIS_URL": f"http://user:{SECRET}@localhost"}),
        (f"app_secret: [{SECRET}]\n", {"WECHAT_APP_SECRET": ""}),
    ],
)
def test_errors_are_one_line_without_the_secret(
    tmp_path: Path, text: str, env: dict[str, str]
) -> None:
    message = str(error_of(tmp_path, text, **env))
    assert message.startswith("config: ")
    assert "\n" not in message
    assert SECRET not in message


def test_with_overrides_coerces_validates_and_copies() -> None:
    changed = with_overrides(VALID, port="9090", nonce_check="off", handlers="handlers.menu")
    assert (changed.port, changed.nonce_check, changed.handlers) == (
        9090,
        False,
        ("handlers.menu",),
    )
    assert (VALID.port, VALID.nonce_check) == (8080, True)
    with pytest.raises(ConfigError) as info:
        with_overrides(VALID, reply_budget=6)
    assert info.value.key == "reply_budget"


def test_with_overrides_unknown_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        with_overrides(VALID, reply_budgte=3)
    assert str(info.value) == "config: reply_budgte: unknown setting"


def test_redacted_masks_every_secret() -> None:
    config = replace(
        VALID,
        encoding_aes_key=AES_KEY,
        encoding_aes_key_previous=OTHER_AES_KEY,
        redis_url=f"redis://:{SECRET}@h",
    )
    shown = config.redacted()
    masked = ("token", "app_secret", "encoding_aes_key", "encoding_aes_key_previous", "redis_url")
    assert {k: shown[k] for k in masked} == dict.fromkeys(masked, "***")
    assert shown["app_id"] == "wx_app"
    assert shown["port"] == 8080
    assert set(shown) == {f.name for f in fields(Config)}
    for secret in (SECRET, AES_KEY, OTHER_AES_KEY, "tok123"):
        assert secret not in repr(shown)


def test_redacted_leaves_empty_secrets_empty() -> None:
    shown = VALID.redacted()
    assert (shown["encoding_aes_key"], shown["redis_url"]) == ("", "")


def test_greeting_falls_back_to_the_default_language() -> None:
    config = replace(VALID, default_language="en")
    assert config.greeting("en").without_name == "Hello! Welcome to {account}."
    assert config.greeting("fr") == config.greetings["en"]


def test_settings_has_one_row_per_field() -> None:
    # a section (web_authorization) is a row, then one row per sub-setting
    top = [s.key for s in SETTINGS if "." not in s.key]
    assert top == [f.name for f in fields(Config)]
    section = [s.key for s in SETTINGS if s.key.startswith("web_authorization.")]
    assert section == [
        f"web_authorization.{name}"
        for name in ("enabled", "public_url", "oauth_base_url", "state_ttl", "link_text")
    ]
    assert all(s.doc for s in SETTINGS)
    by_key = {s.key: s for s in SETTINGS}
    assert by_key["port"].default == "8080"
    assert by_key["handlers"].default == "handlers.greeting"
    assert {s.key: s.env for s in SETTINGS if s.env} == {
        "token": "WECHAT_TOKEN",
        "app_id": "WECHAT_APP_ID",
        "app_secret": "WECHAT_APP_SECRET",
        "encoding_aes_key": "WECHAT_ENCODING_AES_KEY",
        "encoding_aes_key_previous": "WECHAT_ENCODING_AES_KEY_PREVIOUS",
        "safe_mode_only": "BOT_SAFE_MODE_ONLY",
        "api_base_url": "WECHAT_API_BASE_URL",
        "mp_base_url": "WECHAT_MP_BASE_URL",
        "handlers": "BOT_HANDLERS",
        "host": "HOST",
        "fast_path": "BOT_FAST_PATH",
        "port": "PORT",
        "data_dir": "BOT_DATA_DIR",
        "redis_url": "REDIS_URL",
        "customer_service": "BOT_CUSTOMER_SERVICE",
        "log_format": "LOG_FORMAT",
        "log_level": "LOG_LEVEL",
        "web_authorization.enabled": "BOT_WEB_AUTHORIZATION",
        "web_authorization.public_url": "BOT_PUBLIC_URL",
        "web_authorization.oauth_base_url": "WECHAT_OAUTH_BASE_URL",
    }


def test_reference_markdown_mentions_every_setting_and_variable() -> None:
    text = reference_markdown()
    lines = text.splitlines()
    assert len(lines) == len(SETTINGS) + 2
    for setting in SETTINGS:
        assert f"| `{setting.key}` |" in text
        if setting.env:
            assert f"`{setting.env}`" in text
    token_row = next(line for line in lines if line.startswith("| `token` |"))
    assert token_row.endswith("Secret. |")


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("true", True)])
def test_the_fast_path_can_be_switched_from_the_environment(
    tmp_path: Path, value: str, expected: bool
) -> None:
    env = {"WECHAT_TOKEN": "token123", "WECHAT_APP_ID": "wx", "WECHAT_APP_SECRET": "s"}
    (tmp_path / "config.yaml").write_text("fast_path: true\n", encoding="utf-8")
    config = load_config(tmp_path / "config.yaml", {**env, "BOT_FAST_PATH": value})
    assert config.fast_path is expected


@pytest.mark.parametrize("value", ["auto", "on", "off"])
def test_customer_service_takes_auto_on_or_off(tmp_path: Path, value: str) -> None:
    assert load(tmp_path, "", BOT_CUSTOMER_SERVICE=value).customer_service == value


def test_customer_service_refuses_anything_else(tmp_path: Path) -> None:
    assert error_of(tmp_path, "customer_service: sometimes\n").key == "customer_service"


def test_pending_settings_are_bounded(tmp_path: Path) -> None:
    assert error_of(tmp_path, "pending_ttl: 0\n").key == "pending_ttl"
    assert error_of(tmp_path, "pending_per_follower: 0\n").key == "pending_per_follower"
