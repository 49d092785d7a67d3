"""The batched log handler: message lines batched, everything else written at once."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import time

import pytest

from bot.logs import (
    MESSAGE_LOGGER,
    BufferedStreamHandler,
    TextFormatter,
    configure_logging,
    log_message,
)


def _handler(stream: io.StringIO, **kw: float) -> BufferedStreamHandler:
    handler = BufferedStreamHandler(stream, interval=kw.get("interval", 60.0), max_lines=3)
    handler.setFormatter(TextFormatter())
    return handler


def _record(name: str, level: int, text: str) -> logging.LogRecord:
    return logging.getLogger(name).makeRecord(name, level, __file__, 1, text, (), None)


def test_message_lines_wait_for_a_batch_and_others_go_at_once() -> None:
    stream = io.StringIO()
    handler = _handler(stream)
    handler.handle(_record(MESSAGE_LOGGER.name, logging.INFO, "m1"))
    handler.handle(_record(MESSAGE_LOGGER.name, logging.INFO, "m2"))
    assert stream.getvalue() == ""
    handler.handle(_record("bot.webhook.app", logging.INFO, "started"))
    lines = stream.getvalue().splitlines()
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["m1", "m2", "started"]


def test_a_full_batch_and_a_warning_flush() -> None:
    stream = io.StringIO()
    handler = _handler(stream)
    for i in range(3):
        handler.handle(_record(MESSAGE_LOGGER.name, logging.INFO, f"m{i}"))
    assert len(stream.getvalue().splitlines()) == 3
    handler.handle(_record(MESSAGE_LOGGER.name, logging.INFO, "held"))
    handler.handle(_record(MESSAGE_LOGGER.name, logging.WARNING, "warned"))
    assert stream.getvalue().splitlines()[-2:][0].endswith("held")
    assert stream.getvalue().endswith("warned\n")


def test_quiet_periods_are_flushed_by_the_timer() -> None:
    stream = io.StringIO()
    handler = _handler(stream, interval=0.05)
    handler.handle(_record(MESSAGE_LOGGER.name, logging.INFO, "lonely"))
    deadline = time.monotonic() + 5
    while "lonely" not in stream.getvalue():
        assert time.monotonic() < deadline, "the timer never flushed"
        time.sleep(0.02)
    handler.close()


def test_log_message_line_has_no_content_and_every_field() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    MESSAGE_LOGGER.addHandler(keep)
    previous = MESSAGE_LOGGER.level
    MESSAGE_LOGGER.setLevel(logging.INFO)
    try:
        log_message(
            msg_id="42",
            msg_type="text",
            handler=None,
            outcome="duplicate",
            started=time.perf_counter(),
        )
    finally:
        MESSAGE_LOGGER.removeHandler(keep)
        MESSAGE_LOGGER.setLevel(previous)
    (record,) = records
    assert record.getMessage().startswith("message 42 type=text handler=- outcome=duplicate")
    assert record.__dict__["handler"] is None and record.__dict__["outcome"] == "duplicate"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_direct_message_line_is_the_formatted_record(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the logging `serve` sets up, log_message writes its line without a LogRecord:
    the line must be exactly what the formatter makes of the record."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(fmt, "INFO")
    (handler,) = root.handlers
    try:
        assert isinstance(handler, BufferedStreamHandler)
        fields = {"msg_id": "42", "msg_type": "text", "outcome": "replied", "status": 200}
        log_message(
            msg_id="42",
            msg_type="text",
            handler="handlers.greeting.greet",
            outcome="replied",
            started=time.perf_counter(),
        )
        handler.flush()
        direct = stream.getvalue().splitlines()
        assert len(direct) == 1
        record = MESSAGE_LOGGER.makeRecord(
            MESSAGE_LOGGER.name,
            logging.INFO,
            __file__,
            0,
            "message %s type=%s handler=%s outcome=%s latency_ms=%s",
            ("42", "text", "handlers.greeting.greet", "replied", 0.01),
            None,
            extra={**fields, "handler": "handlers.greeting.greet", "latency_ms": 0.01},
        )
        formatted = handler.format(record)
    finally:
        handler.close()
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    if fmt == "text":
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
        assert re.match(stamp, direct[0]) and re.match(stamp, formatted)
        assert re.sub(r"latency_ms=\S+$", "", direct[0][24:]) == re.sub(
            r"latency_ms=\S+$", "", formatted[24:]
        )
    else:
        ours, theirs = json.loads(direct[0]), json.loads(formatted)
        assert list(ours) == list(theirs)  # same keys in the same order
        for line in (ours, theirs):
            del line["ts"], line["latency_ms"]
            line["msg"] = re.sub(r"latency_ms=\S+$", "", line["msg"])
        assert ours == theirs


def test_another_handler_gets_real_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler added after configure_logging (pytest's caplog, an operator's) sees records."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("text", "INFO")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root.addHandler(Keep())
    try:
        log_message(msg_id="7", msg_type="text", handler=None, outcome="replied", started=0.0)
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert [r.__dict__["msg_id"] for r in records] == ["7"]
