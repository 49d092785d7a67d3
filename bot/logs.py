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
    """Masks access tokens and secrets that slip into URLs in log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and (
            "access_token=" in record.msg or "secret=" in record.msg
        ):
            record.msg = _TOKEN_RE.sub(r"\1***", record.msg)
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_RE.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


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
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
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
