"""Distinct, correctly signed pushes, generated fast and written one per line for `wrk`.

Each line is `path?query<TAB>body`: a text message from one of the bench followers with its own
nonce and MsgId, so the bot's replay guard and reply ledger see a new message every time. The
bodies and queries are exactly what
`bot.testing.simulator.sign_request(build_xml(text_fields(...)))` produces (a test pins that),
but built from string templates with the production signing and encryption functions: the
helper's round trip through the XML parser would dominate the time."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

from bot.wechat.crypto import MessageCrypto
from bot.wechat.signature import sha1_signature

Mode = Literal["plain", "safe"]
MODES: tuple[Mode, ...] = ("plain", "safe")

# Texts that no command handler takes, so every push reaches the greeting; two scripts.
CONTENTS = ("你好", "hello there", "今天天气怎么样", "這個怎麼樣", "good morning")
_CHUNK = 25_000  # requests per worker task: big enough that process start-up is noise

_PLAIN_XML = (
    "<xml><ToUserName><![CDATA[{account}]]></ToUserName>"
    "<FromUserName><![CDATA[{openid}]]></FromUserName>"
    "<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[{content}]]></Content><MsgId><![CDATA[{msg_id}]]></MsgId></xml>"
)
_SAFE_XML = (
    "<xml><ToUserName><![CDATA[{account}]]></ToUserName>"
    "<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
)


def follower_openid(index: int) -> str:
    """The OpenID of bench follower `index`."""
    return f"o_bench_{index:05d}"


@dataclass(frozen=True, slots=True)
class Identity:
    """The account the bench bot serves: server token, appid, secret and EncodingAESKey."""

    token: str
    app_id: str
    app_secret: str
    aes_key: str
    account: str = "gh_bench_account"
    webhook_path: str = "/wechat"

    @classmethod
    def fresh(cls, app_id: str = "wx_fake_app", app_secret: str = "fake_secret") -> Identity:
        """New random token and key; appid and secret are the fake API's."""
        aes_key = base64.b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
        return cls(f"bench{secrets.token_hex(8)}", app_id, app_secret, aes_key)


@dataclass(frozen=True, slots=True)
class CorpusSpec:
    """What to generate: `count` pushes numbered from `first` (numbers never repeat in a run)."""

    identity: Identity
    mode: Mode
    count: int
    followers: int
    timestamp: int
    nonce_base: int
    msg_id_base: int
    first: int = 0

    @classmethod
    def new(
        cls, identity: Identity, mode: Mode, count: int, followers: int, first: int = 0
    ) -> CorpusSpec:
        """A spec stamped now, with random nonce and MsgId bases."""
        return cls(
            identity,
            mode,
            count,
            followers,
            timestamp=int(time.time()),
            nonce_base=10**11 + secrets.randbelow(8 * 10**11),
            msg_id_base=10**18 + secrets.randbelow(8 * 10**18),
            first=first,
        )

    def nonce(self, index: int) -> str:
        """The nonce of push `index`."""
        return str(self.nonce_base + index)

    def msg_id(self, index: int) -> str:
        """The MsgId of push `index`."""
        return str(self.msg_id_base + index)

    def openid(self, index: int) -> str:
        """The sender of push `index` (followers take turns)."""
        return follower_openid(index % self.followers)

    def content(self, index: int) -> str:
        """The text of push `index`."""
        return CONTENTS[index % len(CONTENTS)]


def plain_xml(spec: CorpusSpec, index: int) -> str:
    """The plaintext XML of push `index`."""
    return _PLAIN_XML.format(
        account=spec.identity.account,
        openid=spec.openid(index),
        ts=spec.timestamp,
        content=spec.content(index),
        msg_id=spec.msg_id(index),
    )


class LineMaker:
    """Builds corpus lines; everything that is the same on every line is formatted once."""

    def __init__(self, spec: CorpusSpec) -> None:
        """Prepare the templates (and the cipher in safe mode) for `spec`."""
        ident = spec.identity
        self._spec = spec
        self._ts = str(spec.timestamp)
        self._token = ident.token
        self._openids = [follower_openid(i) for i in range(spec.followers)]
        # "%" templates with the constant parts already in place: two lookups less per line
        self._xml = _PLAIN_XML.format(
            account=ident.account,
            openid="%s",
            ts=self._ts,
            content="%s",
            msg_id="%s",
        )
        self._query = f"{ident.webhook_path}?signature=%s&timestamp={self._ts}&nonce=%s&openid=%s"
        self._envelope = _SAFE_XML.format(account=ident.account, encrypt="%s")
        self._crypto = MessageCrypto(ident.aes_key, ident.app_id) if spec.mode == "safe" else None

    def line(self, index: int) -> bytes:
        """Line `index`: `path?query<TAB>body<LF>`."""
        spec = self._spec
        nonce = str(spec.nonce_base + index)
        openid = self._openids[index % spec.followers]
        xml = self._xml % (openid, CONTENTS[index % len(CONTENTS)], spec.msg_id_base + index)
        query = self._query % (sha1_signature(self._token, self._ts, nonce), nonce, openid)
        if self._crypto is None:
            return f"{query}\t{xml}\n".encode()
        encrypt = self._crypto.encrypt(xml)
        msg_signature = sha1_signature(self._token, self._ts, nonce, encrypt)
        body = self._envelope % encrypt
        return f"{query}&encrypt_type=aes&msg_signature={msg_signature}\t{body}\n".encode()


def _write_part(spec: CorpusSpec, start: int, stop: int, path: str) -> None:
    line = LineMaker(spec).line
    with open(path, "wb") as out:
        out.writelines(map(line, range(start, stop)))


@dataclass(frozen=True, slots=True)
class Corpus:
    """A written corpus file."""

    path: Path
    spec: CorpusSpec
    seconds: float  # generation time

    @property
    def count(self) -> int:
        """Requests in the file."""
        return self.spec.count


def write_corpus(spec: CorpusSpec, path: Path, workers: int | None = None) -> Corpus:
    """Generate the corpus into `path`, in parallel worker processes when it is large."""
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    first, stop = spec.first, spec.first + spec.count
    bounds = [(s, min(s + _CHUNK, stop)) for s in range(first, stop, _CHUNK)]
    workers = workers or os.cpu_count() or 1
    if len(bounds) <= 1 or workers <= 1:
        _write_part(spec, first, stop, str(path))
    else:
        parts = [f"{path}.part{n}" for n in range(len(bounds))]
        # fork: the workers inherit the imported modules, so they start in milliseconds
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            for future in [
                pool.submit(_write_part, spec, s, e, p)
                for (s, e), p in zip(bounds, parts, strict=True)
            ]:
                future.result()
        with open(path, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.unlink(part)
    return Corpus(path, spec, time.perf_counter() - started)


def read_corpus(path: Path, start: int = 0) -> Iterator[tuple[str, bytes]]:
    """(path?query, body) of each line from line `start` on."""
    with open(path, "rb") as src:
        for n, line in enumerate(src):
            if n < start:
                continue
            target, _, body = line.rstrip(b"\n").partition(b"\t")
            yield target.decode("ascii"), body
