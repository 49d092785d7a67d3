"""Logging: one structured line per message, readable text or JSON (`LOG_FORMAT=json`).

Message contents and secrets never reach INFO lines: the per-message line carries the message
id, type, handler, outcome and latency, and a filter masks access tokens in any line.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import re
import sys
import threading
import time
from collections import deque
from typing import Any

MESSAGE_LOGGER = logging.getLogger("bot.messages")

_TOKEN_RE = re.compile(r"(access_token=|secret=)[^&\s\"']+")
_FIELDS = ("msg_id", "msg_type", "handler", "outcome", "latency_ms", "status")


class _MaskSecrets(logging.Filter):
    """Masks access tokens and secrets that slip into URLs in log lines and tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == MESSAGE_LOGGER.name:
            return True  # built by log_message from ids and names only: nothing to mask
        # the formatted line, not msg and args apart: a yarl.URL argument is not a str
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: the handler reports it, not us
            return True
        if _has_secret(message):
            record.msg, record.args = _mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text and _has_secret(record.exc_text):
            record.exc_text = _mask(record.exc_text)
        return True


_FORMATTER = logging.Formatter()


def _has_secret(text: str) -> bool:
    return "access_token=" in text or "secret=" in text


def _mask(text: str) -> str:
    return _TOKEN_RE.sub(r"\1***", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _FIELDS:
            if name in record.__dict__:  # kept when None: every message line has every key
                out[name] = record.__dict__[name]
        if record.exc_info:
            out["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`asctime level logger: message`, formatting each second's timestamp once."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.stamp(record.created, int(record.msecs))

    def stamp(self, created: float, msecs: int) -> str:
        """`asctime` for a record created at `created` (`msecs` as LogRecord computes it)."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(created))
        return f"{self._stamp},{msecs:03d}"


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Batches the per-message lines (at most `interval` seconds late); others go at once.

    One write per line (stderr is line-buffered) costs more than the rest of a message's
    logging; a background timer flushes quiet periods, and exit flushes the rest.
    """

    def __init__(self, stream: Any, *, interval: float = 0.5, max_lines: int = 256) -> None:
        super().__init__(stream)
        # a deque: appends need no lock, and flush takes exactly the lines it counted
        self._pending: deque[str] = deque()
        self._interval = interval
        self._max_lines = max_lines
        self._last = time.monotonic()
        self._stopping = threading.Event()
        self._timer = threading.Thread(target=self._flush_periodically, daemon=True)
        self._timer.start()
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._pending.append(line)
        if (
            record.levelno >= logging.WARNING
            or record.name != MESSAGE_LOGGER.name  # only the per-message lines are batched
            or len(self._pending) >= self._max_lines
            or time.monotonic() - self._last >= self._interval
        ):
            self.flush()

    def append_message_line(self, line: str) -> None:
        """A per-message line already formatted by `log_message` (no LogRecord made).

        Quiet periods are the timer thread's to flush; a full batch is written at once.
        """
        pending = self._pending
        pending.append(line)
        if len(pending) >= self._max_lines:
            self.flush()

    def flush(self) -> None:
        with self.lock if self.lock is not None else contextlib.nullcontext():
            self._last = time.monotonic()
            pending = self._pending
            count = len(pending)
            if not count:
                return
            text = "\n".join([pending.popleft() for _ in range(count)]) + "\n"
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # stderr closed at exit: nothing left to tell

    def _flush_periodically(self) -> None:
        while not self._stopping.wait(self._interval):
            self.flush()

    def close(self) -> None:
        """Flush, stop the timer, close."""
        self._stopping.set()
        self.flush()
        super().close()


def configure_logging(fmt: str = "text", level: str = "INFO", *, buffered: bool = True) -> None:
    """Set up the root logger once for the process (lines batched when `buffered`)."""
    handler: logging.Handler = (
        BufferedStreamHandler(sys.stderr) if buffered else logging.StreamHandler(sys.stderr)
    )
    handler.addFilter(_MaskSecrets())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    # the formats use neither: skip looking them up for every record
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    global _installed
    _installed = handler if isinstance(handler, BufferedStreamHandler) else None


# The handler configure_logging installed: log_message formats its line itself while the
# logging set-up is still exactly that one (no other handler, filter or formatter in the way).
_installed: BufferedStreamHandler | None = None
_PARENT = logging.getLogger("bot")


def _direct_handler() -> BufferedStreamHandler | None:
    handler = _installed
    if handler is None:
        return None
    handlers = logging.root.handlers
    if (
        len(handlers) != 1
        or handlers[0] is not handler
        or MESSAGE_LOGGER.handlers
        or MESSAGE_LOGGER.filters
        or not MESSAGE_LOGGER.propagate
        or _PARENT.handlers
        or not _PARENT.propagate
        or handler.level > logging.INFO
        or len(handler.filters) != 1
    ):
        return None
    return handler


def log_message(
    *,
    msg_id: str,
    msg_type: str,
    handler: str | None,
    outcome: str,
    started: float,
    status: int = 200,
) -> None:
    """The one line per message (an INFO line without the message's content)."""
    if not MESSAGE_LOGGER.isEnabledFor(logging.INFO):
        return
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    shown = handler or "-"
    direct = _direct_handler()
    formatter = direct.formatter if direct is not None else None
    created = time.time()
    if direct is not None and type(formatter) is TextFormatter:
        # exactly what TextFormatter makes of the record below, without making it
        msecs = int((created - int(created)) * 1000)
        direct.append_message_line(
            f"{formatter.stamp(created, msecs)} INFO {MESSAGE_LOGGER.name}: message {msg_id}"
            f" type={msg_type} handler={shown} outcome={outcome} latency_ms={latency_ms}"
        )
        return
    fields = {
        "msg_id": msg_id,
        "msg_type": msg_type,
        "handler": handler,
        "outcome": outcome,
        "latency_ms": latency_ms,
        "status": status,
    }
    if direct is not None and type(formatter) is JsonFormatter:
        line = {"ts": round(created, 3), "level": "info", "logger": MESSAGE_LOGGER.name}
        line["msg"] = (
            f"message {msg_id} type={msg_type} handler={shown}"
            f" outcome={outcome} latency_ms={latency_ms}"
        )
        direct.append_message_line(json.dumps(line | fields, ensure_ascii=False))
        return
    # makeRecord + handle, not info(): no stack walk to find the caller on every message
    record = MESSAGE_LOGGER.makeRecord(
        MESSAGE_LOGGER.name,
        logging.INFO,
        __file__,
        0,
        "message %s type=%s handler=%s outcome=%s latency_ms=%s",
        (msg_id, msg_type, shown, outcome, latency_ms),
        None,
        extra=fields,
    )
    MESSAGE_LOGGER.handle(record)
