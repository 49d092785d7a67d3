"""Request heads as llhttp reads them, for the fast path.

llhttp (the `httptools` package, as uvicorn uses it; aiohttp's own C parser is llhttp too)
reads the request line and the headers strictly: CRLF line ends, no obs-fold, no bare CR, one
valid Content-Length, never Content-Length beside Transfer-Encoding. What it refuses, the fast
path hands to aiohttp, which answers 400. Which of the heads llhttp accepts the fast path answers
itself is `bot.server.policy`'s to say.
"""

from __future__ import annotations

import enum

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

MAX_HEAD = 8190  # bytes of a head before its blank line; aiohttp's own line limit
_END = b"\r\n\r\n"


class Unread(enum.Enum):
    """Why there is no head to serve yet."""

    INCOMPLETE = "its blank line has not arrived yet"
    MALFORMED = "llhttp refuses it, or it is longer than MAX_HEAD"


class RequestHead:
    """One request head as llhttp read it; `size` counts its bytes up to the body."""

    __slots__ = ("complete", "headers", "method", "size", "target", "version")

    def __init__(self) -> None:
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []  # (name as sent, value)
        self.complete = False
        self.method = b""
        self.version = ""
        self.size = 0

    # llhttp's callbacks

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.complete = True


def read_head(buf: bytes) -> RequestHead | Unread:
    """The head `buf` starts with (empty lines before it already skipped)."""
    end = buf.find(_END, 0, MAX_HEAD + len(_END))
    if end < 0:
        if len(buf) > MAX_HEAD:
            return Unread.MALFORMED
        # what has arrived may already be refused (bare LF line ends: aiohttp answers at once)
        return Unread.MALFORMED if _refused(buf) else Unread.INCOMPLETE
    head = RequestHead()
    parser = HttpRequestParser(head)
    try:
        parser.feed_data(memoryview(buf)[: end + len(_END)])
    except (HttpParserError, HttpParserUpgrade):
        return Unread.MALFORMED
    if not head.complete:
        return Unread.MALFORMED
    head.method = parser.get_method()
    head.version = parser.get_http_version()
    head.size = end + len(_END)
    return head


def _refused(partial: bytes) -> bool:
    try:
        HttpRequestParser(RequestHead()).feed_data(partial)
    except (HttpParserError, HttpParserUpgrade):
        return True
    return False
