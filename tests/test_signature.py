"""Signature checks against the shared known-answer vectors and hostile inputs."""

from __future__ import annotations

import hashlib

import pytest
from support import VECTORS_PATH, load_vectors

from bot.wechat.signature import sha1_signature, verify_msg_signature, verify_signature

VECTORS = load_vectors()
PLAIN = VECTORS.get("plain_signature", [])
# Every vector that carries a msg_signature, from either AES section
WITH_MSG_SIGNATURE = [
    v for v in VECTORS.get("encrypt", []) + VECTORS.get("decrypt", []) if "msg_signature" in v
]


def _flip_last(text: str) -> str:
    """Change the last character, keeping it a hex digit."""
    return text[:-1] + ("0" if text[-1] != "0" else "1")


def test_vectors_present() -> None:
    assert VECTORS_PATH.is_file(), f"missing known-answer vectors at {VECTORS_PATH}"
    assert len(PLAIN) >= 3
    assert len(WITH_MSG_SIGNATURE) >= 3


@pytest.mark.parametrize("vec", PLAIN, ids=lambda v: f"{v['token']}-{v['timestamp']}")
def test_plain_signature_vector(vec: dict[str, str]) -> None:
    token, ts, nonce, sig = vec["token"], vec["timestamp"], vec["nonce"], vec["signature"]
    assert sha1_signature(token, ts, nonce) == sig
    assert verify_signature(token, ts, nonce, sig) is True
    assert verify_signature(token, ts, nonce, _flip_last(sig)) is False
    assert verify_signature(token, ts, _flip_last(nonce), sig) is False
    assert verify_signature(token + "x", ts, nonce, sig) is False


@pytest.mark.parametrize("vec", WITH_MSG_SIGNATURE, ids=lambda v: str(v["name"]))
def test_msg_signature_vector(vec: dict[str, str]) -> None:
    args = (vec["token"], vec["timestamp"], vec["nonce"], vec["encrypt"])
    assert sha1_signature(*args) == vec["msg_signature"]
    assert verify_msg_signature(*args, vec["msg_signature"]) is True
    assert verify_msg_signature(*args, _flip_last(vec["msg_signature"])) is False
    tampered = (*args[:3], "A" + vec["encrypt"][1:])
    assert verify_msg_signature(*tampered, vec["msg_signature"]) is False


def test_sha1_signature_sorts_before_joining() -> None:
    expected = hashlib.sha1(b"abc").hexdigest()
    assert sha1_signature("c", "a", "b") == expected
    assert sha1_signature("a", "b", "c") == expected
    assert sha1_signature() == hashlib.sha1(b"").hexdigest()


def test_sha1_signature_encodes_utf8() -> None:
    assert sha1_signature("中", "a") == hashlib.sha1("a中".encode()).hexdigest()


@pytest.mark.parametrize("bad", ["", "short", "é" * 40, "\udcff" * 40, "A" * 41])
def test_hostile_signatures_are_false_not_errors(bad: str) -> None:
    assert verify_signature("tok", "1", "2", bad) is False
    assert verify_msg_signature("tok", "1", "2", "enc", bad) is False


def test_lone_surrogates_in_parts_do_not_raise() -> None:
    sig = sha1_signature("tok", "\ud800", "2")
    assert len(sig) == 40
    assert verify_signature("tok", "\ud800", "2", sig) is True
    assert verify_signature("tok", "\ud801", "2", sig) is False
