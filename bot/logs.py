"""Logging: one structured line per message, readable text or JSON (`LOG_FORMAT=json`).

Message contents and secrets never reach INFO lines: the per-message line carries the message
id, type, handler, outcome and latency, and a filter masks access tokens in any line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

MESSAGE_LOGGER = logging.getLogger("bot.messages")

_TOKEN_RE = re.compile(r"(access_token=|secret=)[^&\s\"']+")
_FIELDS = ("msg_id", "msg_type", "handler", "outcome", "latency_ms", "status")


class _MaskSecrets(logging.Filter):
    """Masks access tokens and secrets that slip into URLs in log lines and tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
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


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    """Set up the root logger once for the process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_MaskSecrets())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


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
    MESSAGE_LOGGER.info(
        "message %s type=%s handler=%s outcome=%s latency_ms=%s",
        msg_id,
        msg_type,
        handler or "-",
        outcome,
        latency_ms,
        extra={
            "msg_id": msg_id,
            "msg_type": msg_type,
            "handler": handler,
            "outcome": outcome,
            "latency_ms": latency_ms,
            "status": status,
        },
    )
