"""Safe and compatible mode over HTTP: encrypted envelopes, key rotation, and every bad input."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import counting_handlers
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from support import VECTORS_PATH

from bot.config import ConfigError, load_config
from bot.testing.pytest_plugin import TEST_AES_KEY, TEST_APP_ID, BotFactory, BotUnderTest
from bot.testing.simulator import SignedRequest, build_xml, open_reply, sign_request, text_fields
from bot.wechat.crypto import CryptoError, MessageCrypto
from bot.wechat.replies import parse_reply
from bot.wechat.signature import sha1_signature, verify_msg_signature

# The repo and shared/ sit side by side, here and in CI

COUNTING = ["counting_handlers"]
OPENID = "o_demo_wang"
ACCOUNT = "gh_test_account"
OLD_KEY = TEST_AES_KEY  # what the fixture's bots start with, before a rotation
NEW_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"


@pytest.fixture(autouse=True)
def _no_messages_yet() -> Iterator[None]:
    counting_handlers.received.clear()
    yield
    counting_handlers.received.clear()


@dataclass(frozen=True, slots=True)
class Answer:
    """A raw webhook answer."""

    status: int
    body: str
    content_type: str


async def _post(bot: BotUnderTest, params: Mapping[str, str], body: bytes) -> Answer:
    async with bot.client.post(bot.config.webhook_path, params=dict(params), data=body) as resp:
        return Answer(resp.status, await resp.text(), resp.content_type)


def _envelope(
    token: str,
    encrypt: str,
    *,
    plain: Mapping[str, Any] | None = None,
) -> tuple[dict[str, str], bytes]:
    """A safe-mode push carrying `encrypt` (compatible mode when `plain` fields are given)."""
    ts, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
    params = {
        "signature": sha1_signature(token, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "openid": OPENID,
        "encrypt_type": "aes",
        "msg_signature": sha1_signature(token, ts, nonce, encrypt),
    }
    fields = {**(plain if plain is not None else {"ToUserName": ACCOUNT}), "Encrypt": encrypt}
    return params, build_xml(fields).encode()


def _without(params: Mapping[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in names}


def _open_envelope(answer: Answer, token: str, key: str, app_id: str) -> dict[str, Any]:
    """Check an encrypted answer's shape and MsgSignature, then return the inner reply's fields."""
    assert answer.status == 200 and answer.content_type == "application/xml"
    outer = parse_reply(answer.body)
    assert set(outer) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    assert verify_msg_signature(
        token, outer["TimeStamp"], outer["Nonce"], outer["Encrypt"], outer["MsgSignature"]
    )
    inner = MessageCrypto(key, app_id).decrypt(outer["Encrypt"])
    return parse_reply(inner.decode())


# -- malformed Encrypt values, built by hand ---------------------------------------------------


def _seal_raw(encoding_aes_key: str, plaintext: bytes) -> str:
    """AES-CBC-encrypt `plaintext` exactly as given (no padding added), to forge bad messages."""
    key = base64.b64decode(encoding_aes_key + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plaintext) + encryptor.finalize()).decode()


def _frame(message: bytes, app_id: str, *, length: int | None = None) -> bytes:
    """random16 + length + message + appid, unpadded; `length` overrides the length field."""
    size = len(message) if length is None else length
    return b"0123456789abcdef" + size.to_bytes(4, "big") + message + app_id.encode()


def _pkcs7_32(data: bytes) -> bytes:
    n = 32 - len(data) % 32
    return data + bytes([n]) * n


def _inner_xml(content: str) -> bytes:
    return build_xml(text_fields(OPENID, content, account=ACCOUNT)).encode()


def _sealed_with(bot: BotUnderTest, key: str, content: str) -> SignedRequest:
    """A safe-mode push of `content`, encrypted with `key` (whatever the bot is configured with)."""
    return sign_request(
        bot.config.token,
        _inner_xml(content).decode(),
        mode="safe",
        crypto=MessageCrypto(key, TEST_APP_ID),
    )


def _pad_byte(value: int) -> Callable[[str, str], str]:
    def make(key: str, app_id: str) -> str:
        framed = _frame(_inner_xml("pad"), app_id)
        n = 32 - len(framed) % 32
        return _seal_raw(key, framed + bytes([value]) * n)

    return make


def _length_field(key: str, app_id: str) -> str:
    return _seal_raw(key, _pkcs7_32(_frame(_inner_xml("long"), app_id, length=10**6)))


def _sealed(message: bytes) -> Callable[[str, str], str]:
    def make(key: str, app_id: str) -> str:
        return MessageCrypto(key, app_id).encrypt(message)

    return make


def _other_appid(key: str, app_id: str) -> str:
    return MessageCrypto(key, "wx_other").encrypt(_inner_xml("for another account"))


BAD_ENCRYPT: list[tuple[str, Callable[[str, str], str], int]] = [
    ("not_base64", lambda key, app_id: "!!!notbase64", 400),
    ("17_bytes", lambda key, app_id: base64.b64encode(b"x" * 17).decode(), 400),
    ("empty", lambda key, app_id: "", 400),
    ("pad_byte_0", _pad_byte(0), 400),
    ("pad_byte_33", _pad_byte(33), 400),
    ("length_field_past_end", _length_field, 400),
    ("not_xml_inside", _sealed(b"hello, not xml"), 400),
    ("no_sender_inside", _sealed(b"<xml><MsgType>text</MsgType></xml>"), 400),
    ("other_appid", _other_appid, 403),
]


# -- safe mode ---------------------------------------------------------------------------------


async def test_safe_reply_is_an_encrypted_envelope_whose_signature_verifies(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot(mode="safe", handlers=COUNTING)
    assert bot.crypto is not None
    request = sign_request(
        bot.config.token,
        build_xml(text_fields(OPENID, "你好 safe", account=ACCOUNT)),
        mode="safe",
        crypto=bot.crypto,
    )
    assert b"Content" not in request.body  # the request itself carries only the envelope
    answer = await _post(bot, request.params, request.body)
    assert "got" not in answer.body  # nothing readable outside the envelope
    inner = _open_envelope(answer, bot.config.token, TEST_AES_KEY, TEST_APP_ID)
    assert inner["MsgType"] == "text" and inner["Content"] == "got 你好 safe"
    assert inner["ToUserName"] == OPENID and inner["FromUserName"] == ACCOUNT
    assert counting_handlers.received == ["你好 safe"]


async def test_simulator_opens_encrypted_replies(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(mode="safe", handlers=COUNTING)
    reply = await bot.send_text(OPENID, "hello")
    assert reply.status == 200 and reply.encrypted
    assert reply.content == "got hello"


async def test_open_reply_refuses_a_tampered_envelope(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(mode="safe", handlers=COUNTING)
    request = sign_request(
        bot.config.token, _inner_xml("x").decode(), mode="safe", crypto=bot.crypto
    )
    answer = await _post(bot, request.params, request.body)
    outer = parse_reply(answer.body)
    forged = build_xml({**outer, "MsgSignature": "0" * 40})
    with pytest.raises(ValueError, match="MsgSignature"):
        open_reply(200, forged, token=bot.config.token, crypto=bot.crypto)
    truncated = build_xml({"Encrypt": outer["Encrypt"]})
    with pytest.raises(ValueError, match="lacks"):
        open_reply(200, truncated, token=bot.config.token, crypto=bot.crypto)


async def test_success_is_never_encrypted(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(mode="safe", handlers=COUNTING)
    request = sign_request(
        bot.config.token, _inner_xml("silent").decode(), mode="safe", crypto=bot.crypto
    )
    answer = await _post(bot, request.params, request.body)
    assert (answer.status, answer.body, answer.content_type) == (200, "success", "text/plain")
    assert counting_handlers.received == ["silent"]


async def test_retransmitted_safe_push_runs_the_handler_once(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(mode="safe", handlers=COUNTING)
    request = sign_request(
        bot.config.token, _inner_xml("again").decode(), mode="safe", crypto=bot.crypto
    )
    first = await _post(bot, request.params, request.body)
    second = await _post(bot, request.params, request.body)
    for answer in (first, second):
        inner = _open_envelope(answer, bot.config.token, TEST_AES_KEY, TEST_APP_ID)
        assert inner["Content"] == "got again"
    assert counting_handlers.received == ["again"]


async def test_published_vector_reaches_the_handler(wechat_bot: BotFactory) -> None:
    vectors = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))  # missing file: this fails
    vec = vectors["decrypt"][0]
    expect = vec["expect"]
    bot = await wechat_bot(
        mode="safe",
        handlers=COUNTING,
        token=vec["token"],
        app_id=vec["appid"],
        encoding_aes_key=vec["encoding_aes_key"],
        timestamp_window=0,  # the vector is from 2014
    )
    params = {
        "signature": sha1_signature(vec["token"], vec["timestamp"], vec["nonce"]),
        "timestamp": vec["timestamp"],
        "nonce": vec["nonce"],
        "openid": expect["FromUserName"],
        "encrypt_type": "aes",
        "msg_signature": vec["msg_signature"],
    }
    body = build_xml({"ToUserName": expect["ToUserName"], "Encrypt": vec["encrypt"]}).encode()
    answer = await _post(bot, params, body)
    assert counting_handlers.received == ["abcdteT"]
    inner = _open_envelope(answer, vec["token"], vec["encoding_aes_key"], vec["appid"])
    assert inner["Content"] == "got abcdteT"
    assert inner["ToUserName"] == expect["FromUserName"]
    assert inner["FromUserName"] == expect["ToUserName"]


# -- compatible mode and plaintext -------------------------------------------------------------


def _compatible_a_b(bot: BotUnderTest) -> tuple[dict[str, str], bytes]:
    """Plaintext Content "A" beside an Encrypt whose Content is "B" (same message otherwise)."""
    assert bot.crypto is not None
    plain = text_fields(OPENID, "A", account=ACCOUNT)
    encrypt = bot.crypto.encrypt(build_xml({**plain, "Content": "B"}))
    return _envelope(bot.config.token, encrypt, plain=plain)


async def test_compatible_mode_answers_the_encrypted_part(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(mode="compatible", handlers=COUNTING)
    params, body = _compatible_a_b(bot)
    assert b"<Content><![CDATA[A]]></Content>" in body
    answer = await _post(bot, params, body)
    inner = _open_envelope(answer, bot.config.token, TEST_AES_KEY, TEST_APP_ID)
    assert inner["Content"] == "got B"
    assert counting_handlers.received == ["B"]


async def test_compatible_simulator_round_trip(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(mode="compatible", handlers=COUNTING)
    reply = await bot.send_text(OPENID, "both")
    assert reply.encrypted and reply.content == "got both"


@pytest.mark.parametrize("encrypt_type", [None, "raw"])
async def test_compatible_push_without_aes_gets_a_plaintext_reply(
    wechat_bot: BotFactory, encrypt_type: str | None
) -> None:
    bot = await wechat_bot(mode="compatible", handlers=COUNTING)
    params, body = _compatible_a_b(bot)
    params = _without(params, "encrypt_type")
    if encrypt_type is not None:
        params["encrypt_type"] = encrypt_type
    answer = await _post(bot, params, body)
    assert answer.status == 200 and answer.content_type == "application/xml"
    reply = parse_reply(answer.body)
    assert "Encrypt" not in reply
    assert reply["MsgType"] == "text" and reply["Content"] == "got B"
    assert counting_handlers.received == ["B"]


async def test_compatible_push_without_msg_signature_is_403(wechat_bot: BotFactory) -> None:
    # Whatever encrypt_type says, an Encrypt is never opened unless its msg_signature holds
    bot = await wechat_bot(mode="compatible", handlers=COUNTING)
    params, body = _compatible_a_b(bot)
    answer = await _post(bot, _without(params, "encrypt_type", "msg_signature"), body)
    assert answer.status == 403
    assert counting_handlers.received == []


async def test_compatible_push_to_a_bot_without_key_uses_the_plaintext(
    wechat_bot: BotFactory,
) -> None:
    plain_bot = await wechat_bot(handlers=COUNTING)
    keyed = await wechat_bot(mode="compatible", handlers=COUNTING)
    params, body = _compatible_a_b(keyed)
    answer = await _post(plain_bot, _without(params, "encrypt_type"), body)
    assert answer.status == 200
    assert parse_reply(answer.body)["Content"] == "got A"
    assert counting_handlers.received == ["A"]


@pytest.mark.parametrize("encrypt_type", [None, "raw", "RAW"])
async def test_plaintext_push_to_a_keyed_bot_gets_plaintext(
    wechat_bot: BotFactory, encrypt_type: str | None
) -> None:
    bot = await wechat_bot(mode="safe", handlers=COUNTING)
    request = sign_request(bot.config.token, _inner_xml("plain").decode())
    params = dict(request.params)
    if encrypt_type is not None:
        params["encrypt_type"] = encrypt_type
    answer = await _post(bot, params, request.body)
    assert answer.status == 200
    assert parse_reply(answer.body)["Content"] == "got plain"
    assert counting_handlers.received == ["plain"]


async def test_plaintext_body_claiming_aes_is_400(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(mode="safe", handlers=COUNTING)
    request = sign_request(bot.config.token, _inner_xml("sneaky").decode())
    answer = await _post(bot, {**request.params, "encrypt_type": "aes"}, request.body)
    assert answer.status == 400
    assert counting_handlers.received == []


async def test_encrypted_push_to_a_bot_without_key_is_400(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=COUNTING)
    assert bot.config.encoding_aes_key == ""
    request = _sealed_with(bot, TEST_AES_KEY, "x")
    answer = await _post(bot, request.params, request.body)
    assert answer.status == 400 and "EncodingAESKey" in answer.body
    assert counting_handlers.received == []


# -- safe_mode_only ----------------------------------------------------------------------------


async def test_safe_mode_only_refuses_plaintext_and_accepts_safe(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(mode="safe", handlers=COUNTING, safe_mode_only="true")
    assert bot.config.safe_mode_only is True
    plain = sign_request(bot.config.token, _inner_xml("plain").decode())
    assert (await _post(bot, plain.params, plain.body)).status == 403
    raw = {**plain.params, "encrypt_type": "raw"}
    assert (await _post(bot, raw, plain.body)).status == 403
    # a compatible body without encrypt_type=aes is a plaintext request too
    compatible = sign_request(
        bot.config.token, _inner_xml("compat").decode(), mode="compatible", crypto=bot.crypto
    )
    answer = await _post(bot, _without(compatible.params, "encrypt_type"), compatible.body)
    assert answer.status == 403
    assert counting_handlers.received == []
    reply = await bot.send_text(OPENID, "safe one")
    assert reply.status == 200 and reply.encrypted and reply.content == "got safe one"
    assert counting_handlers.received == ["safe one"]


def test_safe_mode_only_comes_from_the_environment(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("account_name: T\n", encoding="utf-8")
    env = {
        "WECHAT_TOKEN": "tok123",
        "WECHAT_APP_ID": TEST_APP_ID,
        "WECHAT_APP_SECRET": "s",
        "BOT_SAFE_MODE_ONLY": "1",
    }
    with pytest.raises(ConfigError) as info:
        load_config(config_file, env)
    assert info.value.key == "safe_mode_only"
    config = load_config(config_file, {**env, "WECHAT_ENCODING_AES_KEY": TEST_AES_KEY})
    assert config.safe_mode_only is True


@pytest.mark.parametrize(
    ("var", "value", "problem"),
    [
        ("WECHAT_ENCODING_AES_KEY", TEST_AES_KEY[:42], "must be 43 base64 characters (got 42)"),
        ("WECHAT_ENCODING_AES_KEY", TEST_AES_KEY + "H", "must be 43 base64 characters (got 44)"),
        ("WECHAT_ENCODING_AES_KEY", "!" * 43, "only base64 characters"),
        ("WECHAT_ENCODING_AES_KEY_PREVIOUS", "short", "must be 43 base64 characters (got 5)"),
    ],
)
def test_aes_key_of_the_wrong_shape_refuses_to_load(
    tmp_path: Path, var: str, value: str, problem: str
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("account_name: T\n", encoding="utf-8")
    env = {
        "WECHAT_TOKEN": "tok123",
        "WECHAT_APP_ID": TEST_APP_ID,
        "WECHAT_APP_SECRET": "s",
        "WECHAT_ENCODING_AES_KEY": TEST_AES_KEY,
        var: value,
    }
    with pytest.raises(ConfigError) as info:
        load_config(config_file, env)
    key = var.removeprefix("WECHAT_").lower()
    assert info.value.key == key
    assert str(info.value).startswith(f"config: {key}: ") and problem in str(info.value)
    assert "\n" not in str(info.value) and value not in str(info.value)


# -- key rotation ------------------------------------------------------------------------------


async def test_rotation_accepts_the_previous_key_and_answers_with_the_new(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot(
        mode="safe",
        handlers=COUNTING,
        encoding_aes_key=NEW_KEY,
        encoding_aes_key_previous=OLD_KEY,
    )
    old = _sealed_with(bot, OLD_KEY, "sealed with old")
    answer = await _post(bot, old.params, old.body)
    inner = _open_envelope(answer, bot.config.token, NEW_KEY, TEST_APP_ID)
    assert inner["Content"] == "got sealed with old"
    with pytest.raises(CryptoError):  # the reply is not sealed with the old key
        MessageCrypto(OLD_KEY, TEST_APP_ID).decrypt(parse_reply(answer.body)["Encrypt"])
    assert (await bot.send_text(OPENID, "sealed with new")).content == "got sealed with new"
    assert counting_handlers.received == ["sealed with old", "sealed with new"]


async def test_without_the_previous_key_old_messages_are_400(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(mode="safe", handlers=COUNTING, encoding_aes_key=NEW_KEY)
    old = _sealed_with(bot, OLD_KEY, "sealed with old")
    answer = await _post(bot, old.params, old.body)
    assert answer.status == 400 and "cannot decrypt" in answer.body
    assert counting_handlers.received == []


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("compatible", [False, True], ids=["safe", "compatible"])
@pytest.mark.parametrize(
    ("make", "status"),
    [(make, status) for _, make, status in BAD_ENCRYPT],
    ids=[name for name, _, _ in BAD_ENCRYPT],
)
async def test_malformed_encrypt_is_refused_before_any_handler(
    wechat_bot: BotFactory, make: Callable[[str, str], str], status: int, compatible: bool
) -> None:
    bot = await wechat_bot(mode="safe", handlers=COUNTING)
    encrypt = make(TEST_AES_KEY, TEST_APP_ID)
    # in compatible mode a readable plaintext part must not be used as a fallback
    plain = text_fields(OPENID, "plaintext fallback", account=ACCOUNT) if compatible else None
    params, body = _envelope(bot.config.token, encrypt, plain=plain)
    answer = await _post(bot, params, body)
    assert answer.status == status
    assert answer.content_type == "text/plain"
    assert counting_handlers.received == []
    assert (await bot.client.get("/healthz")).status == 200


def test_forged_encrypt_values_fail_for_the_reason_they_name() -> None:
    # the hand-built values fail for the reason their names give, not by accident
    crypto = MessageCrypto(TEST_AES_KEY, TEST_APP_ID)
    reasons = {}
    for name, make, _ in BAD_ENCRYPT[:-1]:
        try:
            crypto.decrypt(make(TEST_AES_KEY, TEST_APP_ID))
        except CryptoError as exc:
            reasons[name] = exc.reason
    assert reasons == {
        "not_base64": "not_base64",
        "17_bytes": "bad_length",
        "empty": "bad_length",
        "pad_byte_0": "bad_padding",
        "pad_byte_33": "bad_padding",
        "length_field_past_end": "bad_length_field",
    }
    with pytest.raises(CryptoError) as info:
        crypto.decrypt(_other_appid(TEST_AES_KEY, TEST_APP_ID))
    assert info.value.reason == "appid_mismatch"


@pytest.mark.parametrize(
    "change",
    [
        {"msg_signature": "0" * 40},
        {"msg_signature": "not-hex-at-all"},
        {"msg_signature": sha1_signature("testtoken", "1", "2", "other")},
        {"msg_signature": None},
    ],
    ids=["zeros", "not_hex", "over_other_values", "missing"],
)
async def test_bad_or_missing_msg_signature_is_403(
    wechat_bot: BotFactory, change: dict[str, str | None]
) -> None:
    bot = await wechat_bot(mode="safe", handlers=COUNTING)
    assert bot.crypto is not None
    params, body = _envelope(bot.config.token, bot.crypto.encrypt(_inner_xml("forged")))
    for name, value in change.items():
        params = _without(params, name) if value is None else {**params, name: value}
    answer = await _post(bot, params, body)
    assert answer.status == 403 and "msg_signature" in answer.body
    assert counting_handlers.received == []


async def test_encrypt_swapped_under_a_msg_signature_is_403(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(mode="safe", handlers=COUNTING)
    assert bot.crypto is not None
    params, _ = _envelope(bot.config.token, bot.crypto.encrypt(_inner_xml("genuine")))
    swapped = build_xml({"ToUserName": ACCOUNT, "Encrypt": bot.crypto.encrypt(_inner_xml("evil"))})
    answer = await _post(bot, params, swapped.encode())
    assert answer.status == 403
    assert counting_handlers.received == []
