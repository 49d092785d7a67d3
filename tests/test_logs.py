"""The batched log handler: message lines batched, everything else written at once."""

from __future__ import annotations

import io
import logging
import time

from bot.logs import MESSAGE_LOGGER, BufferedStreamHandler, TextFormatter, log_message


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
    handler.handle(_record("bot.app", logging.INFO, "started"))
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
