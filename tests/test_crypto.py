"""Safe-mode AES: known-answer vectors, key rotation, every malformed input, and fuzzing."""

from __future__ import annotations

import base64
import json
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st
from support import VECTORS_PATH, load_vectors

from bot.wechat.crypto import AppIdMismatch, CryptoError, MessageCrypto, validate_encoding_aes_key
from bot.wechat.signature import sha1_signature, verify_msg_signature

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
OTHER_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
APPID = "wxb11529c136998cb6"
RANDOM16 = b"aaaabbbbccccdddd"
FUZZ = settings(max_examples=200, deadline=None)
PRINTABLE_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


VECTORS = load_vectors()


def _seal_raw(encoding_aes_key: str, plaintext: bytes) -> str:
    """AES-CBC-encrypt ``plaintext`` exactly as given (no padding added), to forge bad messages."""
    key = base64.b64decode(encoding_aes_key + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plaintext) + encryptor.finalize()).decode()


def _reason(crypto: MessageCrypto, encrypt: str) -> str:
    """Decrypt expecting failure; return the error's reason."""
    with pytest.raises(CryptoError) as info:
        crypto.decrypt(encrypt)
    return info.value.reason


def test_vectors_present() -> None:
    assert VECTORS_PATH.is_file(), f"missing known-answer vectors at {VECTORS_PATH}"
    assert len(VECTORS["encrypt"]) >= 3
    assert len(VECTORS["decrypt"]) >= 2


@pytest.mark.parametrize("vec", VECTORS.get("encrypt", []), ids=lambda v: str(v["name"]))
def test_encrypt_vector(vec: dict[str, str]) -> None:
    crypto = MessageCrypto(vec["encoding_aes_key"], vec["appid"])
    assert crypto.encrypt(vec["message"], vec["random"].encode()) == vec["encrypt"]
    assert crypto.encrypt(vec["message"].encode(), vec["random"].encode()) == vec["encrypt"]
    assert crypto.decrypt(vec["encrypt"]) == vec["message"].encode()
    if "msg_signature" in vec:
        signed = sha1_signature(vec["token"], vec["timestamp"], vec["nonce"], vec["encrypt"])
        assert signed == vec["msg_signature"]


@pytest.mark.parametrize("vec", VECTORS.get("decrypt", []), ids=lambda v: str(v["name"]))
def test_decrypt_vector(vec: dict[str, Any]) -> None:
    assert verify_msg_signature(
        vec["token"], vec["timestamp"], vec["nonce"], vec["encrypt"], vec["msg_signature"]
    )
    plain = MessageCrypto(vec["encoding_aes_key"], vec["appid"]).decrypt(vec["encrypt"])
    if "expect" in vec:
        root = ET.fromstring(plain)
        assert {k: root.findtext(k) for k in vec["expect"]} == vec["expect"]
    else:
        fields = json.loads(plain)
        assert {k: fields[k] for k in vec["expect_json"]} == vec["expect_json"]


def test_ciphertext_is_padded_to_32_byte_blocks() -> None:
    crypto = MessageCrypto(KEY, APPID)
    header_and_appid = 20 + len(APPID)
    for size in range(70):
        sealed = base64.b64decode(crypto.encrypt(b"x" * size, RANDOM16))
        unpadded = header_and_appid + size
        assert len(sealed) == unpadded + (32 - unpadded % 32)
        assert crypto.decrypt(base64.b64encode(sealed).decode()) == b"x" * size


def test_encrypt_uses_fresh_randomness() -> None:
    crypto = MessageCrypto(KEY, APPID)
    assert crypto.encrypt("hi") != crypto.encrypt("hi")
    with pytest.raises(ValueError, match="16 bytes"):
        crypto.encrypt("hi", b"short")


# --- key rotation ---


def test_previous_key_still_decrypts() -> None:
    sealed_old = MessageCrypto(OLD_KEY, APPID).encrypt("old days", RANDOM16)
    rotated = MessageCrypto(KEY, APPID, previous_key=OLD_KEY)
    assert rotated.decrypt(sealed_old) == b"old days"
    with pytest.raises(CryptoError) as info:
        MessageCrypto(KEY, APPID).decrypt(sealed_old)
    assert not isinstance(info.value, AppIdMismatch)


def test_rotation_encrypts_with_the_current_key() -> None:
    sealed = MessageCrypto(KEY, APPID, previous_key=OLD_KEY).encrypt("new days")
    assert MessageCrypto(KEY, APPID).decrypt(sealed) == b"new days"
    with pytest.raises(CryptoError):
        MessageCrypto(OLD_KEY, APPID).decrypt(sealed)


def test_rotation_reports_appid_mismatch_from_either_key() -> None:
    rotated = MessageCrypto(KEY, APPID, previous_key=OLD_KEY)
    for key in (KEY, OLD_KEY):
        sealed = MessageCrypto(key, "wxsomeoneelse").encrypt("hello", RANDOM16)
        with pytest.raises(AppIdMismatch):
            rotated.decrypt(sealed)


def test_rotation_without_mismatch_raises_the_current_keys_error() -> None:
    rotated = MessageCrypto(KEY, APPID, previous_key=OLD_KEY)
    # Well padded, length field past the end, under the current key only
    forged_current = _seal_raw(KEY, RANDOM16 + (999).to_bytes(4, "big") + bytes([12]) * 12)
    assert _reason(rotated, forged_current) == "bad_length_field"
    # The same forgery under the previous key: the current key's (garbage) error wins
    forged_previous = _seal_raw(OLD_KEY, RANDOM16 + (999).to_bytes(4, "big") + bytes([12]) * 12)
    current_only = _reason(MessageCrypto(KEY, APPID), forged_previous)
    assert current_only != "bad_length_field"
    assert _reason(rotated, forged_previous) == current_only


# --- malformed input, one reason each ---


@pytest.mark.parametrize("text", ["not base64!!", "abc", "YWJj\n", "中文中文", "YW=J"])
def test_not_base64(text: str) -> None:
    assert _reason(MessageCrypto(KEY, APPID), text) == "not_base64"


def test_not_a_string_is_not_base64() -> None:
    assert _reason(MessageCrypto(KEY, APPID), None) == "not_base64"  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 15, 17, 33])
def test_bad_length(size: int) -> None:
    text = base64.b64encode(b"\x01" * size).decode()
    assert _reason(MessageCrypto(KEY, APPID), text) == "bad_length"


@pytest.mark.parametrize(
    "tail",
    [b"\x00", bytes([33]), bytes([255]), b"\x05\x05\x05\x04", b"\x01\x02"],
    ids=["pad-0", "pad-33", "pad-255", "pad-inconsistent", "pad-2-only-one"],
)
def test_bad_padding(tail: bytes) -> None:
    plaintext = RANDOM16 + (0).to_bytes(4, "big") + APPID.encode()
    plaintext += b"\x00" * (64 - len(plaintext) - len(tail)) + tail
    assert _reason(MessageCrypto(KEY, APPID), _seal_raw(KEY, plaintext)) == "bad_padding"


def test_pad_of_whole_block_is_valid_and_pad_beyond_data_is_not() -> None:
    crypto = MessageCrypto(KEY, APPID)
    # 20 + 12 = 32 bytes: an aligned plaintext carries a full block of 32s
    aligned = RANDOM16 + (0).to_bytes(4, "big") + b"wx0123456789"
    sealed = _seal_raw(KEY, aligned + bytes([32]) * 32)
    assert MessageCrypto(KEY, "wx0123456789").decrypt(sealed) == b""
    # 16 bytes of ciphertext whose last byte claims 17 bytes of padding
    assert _reason(crypto, _seal_raw(KEY, bytes([17]) * 16)) == "bad_padding"


def test_length_field_past_the_end() -> None:
    crypto = MessageCrypto(KEY, APPID)
    body = b"hello"
    for claimed in (len(body) + len(APPID) + 1, 0xFFFFFFFF):
        plaintext = RANDOM16 + claimed.to_bytes(4, "big") + body + APPID.encode()
        pad = 32 - len(plaintext) % 32
        sealed = _seal_raw(KEY, plaintext + bytes([pad]) * pad)
        assert _reason(crypto, sealed) == "bad_length_field"


def test_plaintext_too_short_for_header() -> None:
    crypto = MessageCrypto(KEY, APPID)
    assert _reason(crypto, _seal_raw(KEY, bytes([32]) * 32)) == "bad_length_field"
    assert _reason(crypto, _seal_raw(KEY, b"r" * 19 + bytes([13]) * 13)) == "bad_length_field"


@pytest.mark.parametrize("other", ["wxsomeoneelse", APPID + "x", APPID[:-1], APPID.upper()])
def test_other_appid(other: str) -> None:
    sealed = MessageCrypto(KEY, other).encrypt("hello", RANDOM16)
    with pytest.raises(AppIdMismatch) as info:
        MessageCrypto(KEY, APPID).decrypt(sealed)
    assert info.value.reason == "appid_mismatch"


def test_shorter_length_field_shifts_message_into_appid() -> None:
    # The length field decides where the appid starts: a lie there is a mismatch, not a success
    plaintext = RANDOM16 + (3).to_bytes(4, "big") + b"hello" + APPID.encode()
    pad = 32 - len(plaintext) % 32
    with pytest.raises(AppIdMismatch):
        MessageCrypto(KEY, APPID).decrypt(_seal_raw(KEY, plaintext + bytes([pad]) * pad))


# --- encrypt_reply ---


def test_encrypt_reply_envelope_round_trips() -> None:
    crypto = MessageCrypto(KEY, APPID)
    reply = "<xml><Content><![CDATA[你好]]></Content></xml>"
    envelope = crypto.encrypt_reply(reply, "tok", timestamp="1714112445", nonce="415670741")
    root = ET.fromstring(envelope)
    assert [child.tag for child in root] == ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"]
    encrypt = root.findtext("Encrypt") or ""
    assert root.findtext("TimeStamp") == "1714112445"
    assert root.findtext("Nonce") == "415670741"
    signature = root.findtext("MsgSignature") or ""
    assert signature == sha1_signature("tok", "1714112445", "415670741", encrypt)
    assert verify_msg_signature("tok", "1714112445", "415670741", encrypt, signature)
    assert crypto.decrypt(encrypt).decode() == reply
    assert envelope.startswith("<xml><Encrypt><![CDATA[")


def test_encrypt_reply_defaults_and_freshness() -> None:
    crypto = MessageCrypto(KEY, APPID)
    first = ET.fromstring(crypto.encrypt_reply("<xml/>", "tok"))
    second = ET.fromstring(crypto.encrypt_reply("<xml/>", "tok"))
    assert first.findtext("Encrypt") != second.findtext("Encrypt")
    for root in (first, second):
        ts, nonce = root.findtext("TimeStamp") or "", root.findtext("Nonce") or ""
        assert ts.isdigit() and abs(int(ts) - time.time()) < 300
        assert nonce.isdigit() and nonce.isascii()
        encrypt = root.findtext("Encrypt") or ""
        assert verify_msg_signature("tok", ts, nonce, encrypt, root.findtext("MsgSignature") or "")
        assert crypto.decrypt(encrypt) == b"<xml/>"


def test_encrypt_reply_keeps_hostile_nonce_and_timestamp_inside_their_elements() -> None:
    crypto = MessageCrypto(KEY, APPID)
    root = ET.fromstring(crypto.encrypt_reply("<xml/>", "tok", timestamp="1<&>", nonce="a]]>b"))
    assert root.findtext("TimeStamp") == "1<&>"
    assert root.findtext("Nonce") == "a]]>b"
    encrypt = root.findtext("Encrypt") or ""
    signature = root.findtext("MsgSignature") or ""
    assert verify_msg_signature("tok", "1<&>", "a]]>b", encrypt, signature)


# --- keys ---


def test_validate_encoding_aes_key() -> None:
    key = validate_encoding_aes_key(KEY)
    assert len(key) == 32
    assert key == base64.b64decode(KEY + "=")


@pytest.mark.parametrize(
    "bad",
    [KEY[:-1], KEY + "A", "", KEY[:-1] + "!", KEY[:-1] + "中", KEY[:-1] + "="],
    ids=["42", "44", "empty", "bang", "non-ascii", "padding-char"],
)
def test_validate_encoding_aes_key_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="EncodingAESKey") as info:
        validate_encoding_aes_key(bad)
    if bad:
        assert bad not in str(info.value)
    assert info.value.__cause__ is None


def test_message_crypto_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="EncodingAESKey"):
        MessageCrypto(KEY[:-1], APPID)
    with pytest.raises(ValueError, match="EncodingAESKey"):
        MessageCrypto(KEY, APPID, previous_key="short")
    with pytest.raises(ValueError, match="app_id"):
        MessageCrypto(KEY, "")


# --- fuzzing ---


@FUZZ
@given(message=st.text(), app_id=st.text(alphabet=PRINTABLE_ASCII, min_size=1, max_size=32))
def test_round_trip(message: str, app_id: str) -> None:
    crypto = MessageCrypto(KEY, app_id, previous_key=OLD_KEY)
    assert crypto.decrypt(crypto.encrypt(message)) == message.encode()


CRYPTO = MessageCrypto(KEY, APPID, previous_key=OLD_KEY)


def _decrypt_or_crypto_error(text: str) -> None:
    """Decrypt, allowing success or CryptoError; anything else propagates and fails the test."""
    try:
        CRYPTO.decrypt(text)
    except CryptoError as exc:
        assert exc.reason in {
            "not_base64",
            "bad_length",
            "bad_padding",
            "bad_length_field",
            "appid_mismatch",
        }


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_base64_only_raises_crypto_error(data: bytes) -> None:
    _decrypt_or_crypto_error(base64.b64encode(data).decode())


@FUZZ
@given(text=st.text(max_size=200))
def test_random_text_only_raises_crypto_error(text: str) -> None:
    _decrypt_or_crypto_error(text)


@FUZZ
@given(
    blocks=st.integers(min_value=1, max_value=6),
    data=st.data(),
)
def test_forged_plaintext_only_raises_crypto_error(blocks: int, data: st.DataObject) -> None:
    # Sealed under the real key so padding, length-field and appid checks all get exercised
    plaintext = data.draw(st.binary(min_size=16 * blocks, max_size=16 * blocks))
    tail = data.draw(st.integers(min_value=0, max_value=40))
    plaintext = plaintext[:-1] + bytes([tail])
    _decrypt_or_crypto_error(_seal_raw(KEY, plaintext))


def test_every_reply_is_a_fresh_cbc_encryption_whatever_came_before() -> None:
    """One CBC context serves all replies: each must equal a fresh CBC run from the IV."""
    key = base64.b64decode(KEY + "=")
    crypto = MessageCrypto(KEY, APPID)
    random16 = bytes(range(16))
    first = crypto.encrypt("hello", random16)
    for size in (0, 1, 15, 16, 17, 31, 32, 33, 500, 4000):
        message = "字" * size
        sealed = base64.b64decode(crypto.encrypt(message, random16))
        fresh = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        plain = fresh.update(sealed) + fresh.finalize()
        length = int.from_bytes(plain[16:20], "big")
        assert plain[:16] == random16
        assert plain[20 : 20 + length].decode() == message
        assert crypto.decrypt(base64.b64encode(sealed).decode()) == message.encode()
    assert crypto.encrypt("hello", random16) == first  # same input, same output, any time
