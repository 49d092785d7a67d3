"""Late replies through the customer-service API: retries, final refusals, deadline, drain."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, cast

import pytest

from bot.client.api import WeChatAPI, WeChatAPIError
from bot.webhook.delivery import LateDelivery
from bot.wechat.replies import ImageReply, TextReply, TransferCustomerServiceReply

OPENID = "o_delivery_test"
TEXT_PAYLOAD = {"touser": OPENID, "msgtype": "text", "text": {"content": "late hello"}}


class StubAPI:
    """`send_custom_message` failing with the scripted errcodes first, then succeeding."""

    def __init__(self, errcodes: list[int] | None = None, *, always: int | None = None) -> None:
        self.errcodes = list(errcodes or [])
        self.always = always
        self.attempts: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.started: list[float] = []  # monotonic time of each attempt
        self.gate: asyncio.Event | None = None

    async def send_custom_message(self, payload: Mapping[str, Any]) -> None:
        self.attempts.append(dict(payload))
        self.started.append(time.monotonic())
        if self.gate is not None:
            await self.gate.wait()
        errcode = self.always if self.always is not None else None
        if errcode is None and self.errcodes:
            errcode = self.errcodes.pop(0)
        if errcode is not None:
            raise WeChatAPIError(errcode, f"error {errcode}", "message_custom_send")
        self.sent.append(dict(payload))


class Harness:
    """A LateDelivery over a stub API, recording observed outcomes."""

    def __init__(
        self,
        api: StubAPI,
        *,
        deadline: float = 5.0,
        backoff: float = 0.001,
        max_backoff: float = 0.004,
    ) -> None:
        self.api = api
        self.outcomes: list[str] = []
        self.delivery = LateDelivery(
            cast(WeChatAPI, api),
            deadline=deadline,
            backoff=backoff,
            max_backoff=max_backoff,
            observe=self.outcomes.append,
        )

    async def deliver(self, reply: Any = None) -> int:
        """Submit one reply and wait for it; returns drain()'s count."""
        self.delivery.submit(OPENID, reply if reply is not None else TextReply("late hello"))
        return await self.delivery.drain(1.5)


async def test_delivered_once() -> None:
    harness = Harness(StubAPI())
    assert await harness.deliver() == 0
    assert harness.api.sent == [TEXT_PAYLOAD]
    assert harness.outcomes == ["delivered"]
    assert harness.delivery.pending == set()


async def test_payload_of_another_reply_type() -> None:
    harness = Harness(StubAPI())
    await harness.deliver(ImageReply("media_9"))
    assert harness.api.sent == [
        {"touser": OPENID, "msgtype": "image", "image": {"media_id": "media_9"}}
    ]


@pytest.mark.parametrize("errcode", [-1, -2, 45011, 40001])
async def test_transient_errcode_is_retried_until_success(errcode: int) -> None:
    harness = Harness(StubAPI([errcode, errcode, errcode]))
    assert await harness.deliver() == 0
    assert len(harness.api.attempts) == 4
    assert harness.api.sent == [TEXT_PAYLOAD]
    assert harness.outcomes == ["delivered"]


@pytest.mark.parametrize("errcode", [45015, 45047, 40003, 43004, 48001])
async def test_final_errcode_is_dropped_after_one_attempt(
    errcode: int, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(StubAPI(always=errcode))
    with caplog.at_level(logging.WARNING, logger="bot.webhook.delivery"):
        assert await harness.deliver() == 0
    assert len(harness.api.attempts) == 1
    assert harness.api.sent == []
    assert harness.outcomes == ["dropped"]
    assert [r.getMessage() for r in caplog.records] == [
        f"late reply dropped: errcode={errcode} error {errcode} (handler -)"
    ]


async def test_deadline_stops_retries(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness(StubAPI(always=-1), deadline=0.05, backoff=0.02, max_backoff=8.0)
    with caplog.at_level(logging.ERROR, logger="bot.webhook.delivery"):
        assert await harness.deliver() == 0
    # the first retry fits the deadline; the third cannot (0.02 + 0.04 + 0.08 > 0.05)
    assert len(harness.api.attempts) in (2, 3)
    assert harness.outcomes == ["failed"]
    (record,) = caplog.records
    attempts = len(harness.api.attempts)
    assert record.getMessage() == (
        f"late reply not delivered after {attempts} attempts: errcode=-1 error -1 (handler -)"
    )


async def test_no_retry_when_the_backoff_exceeds_the_deadline() -> None:
    harness = Harness(StubAPI(always=-1), deadline=0.01, backoff=0.5)
    assert await harness.deliver() == 0
    assert len(harness.api.attempts) == 1
    assert harness.outcomes == ["failed"]


async def test_unsupported_reply_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness(StubAPI())
    with caplog.at_level(logging.WARNING, logger="bot.webhook.delivery"):
        harness.delivery.submit(OPENID, TransferCustomerServiceReply("kf@acct"))
    assert harness.outcomes == ["unsupported"]
    assert harness.delivery.pending == set()
    assert await harness.delivery.drain(0.1) == 0
    assert harness.api.attempts == []
    assert [r.getMessage() for r in caplog.records] == [
        "late reply of type TransferCustomerServiceReply cannot be sent through the "
        "customer-service API; dropped (handler -)"
    ]


async def test_each_submit_is_sent_once() -> None:
    harness = Harness(StubAPI())
    for n in range(3):
        harness.delivery.submit(OPENID, TextReply(f"m{n}"))
    assert len(harness.delivery.pending) == 3
    assert await harness.delivery.drain(1.0) == 0
    assert sorted(p["text"]["content"] for p in harness.api.sent) == ["m0", "m1", "m2"]
    assert harness.outcomes == ["delivered"] * 3


async def test_drain_with_nothing_pending_is_zero() -> None:
    assert await Harness(StubAPI()).delivery.drain(0.0) == 0


async def test_drain_returns_the_unfinished_count_and_cancels_them() -> None:
    api = StubAPI()
    api.gate = asyncio.Event()  # never set: the sends hang
    harness = Harness(api)
    harness.delivery.submit(OPENID, TextReply("a"))
    harness.delivery.submit(OPENID, TextReply("b"))
    tasks = set(harness.delivery.pending)
    assert await harness.delivery.drain(0.05) == 2
    await asyncio.gather(*tasks, return_exceptions=True)
    assert all(t.cancelled() for t in tasks)
    assert harness.delivery.pending == set()
    assert harness.outcomes == []


async def test_drain_waits_for_deliveries_that_finish_in_time() -> None:
    api = StubAPI()
    api.gate = asyncio.Event()
    harness = Harness(api)
    harness.delivery.submit(OPENID, TextReply("a"))
    asyncio.get_running_loop().call_later(0.02, api.gate.set)
    assert await harness.delivery.drain(1.0) == 0
    assert harness.api.sent == [{**TEXT_PAYLOAD, "text": {"content": "a"}}]


async def test_no_attempt_starts_after_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.webhook.delivery.random.random", lambda: 0.999)  # the longest jitter
    harness = Harness(StubAPI(always=-1), deadline=0.05, backoff=0.04, max_backoff=8.0)
    await harness.deliver()
    assert harness.outcomes == ["failed"]
    first, *later = harness.api.started
    assert [t - first <= 0.05 for t in later] == [True] * len(later)
