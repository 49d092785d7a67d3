"""Answers waiting for the next message, the quota table and payloads read back as replies."""

from __future__ import annotations

import pytest

from bot.storage.memory import MemoryStorage
from bot.webhook.pending import PendingAnswers, waiting_in
from bot.webhook.quota import CustomerServiceQuota
from bot.wechat.messages import Message, parse_message
from bot.wechat.replies import (
    Article,
    ImageReply,
    MusicReply,
    NewsReply,
    Reply,
    TextReply,
    VideoReply,
    VoiceReply,
    customer_service_payload,
    reply_from_payload,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _text(content: str) -> dict[str, object]:
    return {"touser": "o1", "msgtype": "text", "text": {"content": content}}


async def test_answers_come_back_once_in_the_order_they_were_kept() -> None:
    storage = MemoryStorage(100)
    pending = PendingAnswers(storage, ttl=60.0, limit=10)
    for n in range(3):
        await pending.keep("o1", _text(f"a{n}"), "h", "test")
    record = await storage.get_record("follower:o1")
    taken = await pending.take("o1", record)
    assert [a.payload["text"] for a in taken] == [{"content": f"a{n}"} for n in range(3)]
    assert waiting_in(await storage.get_record("follower:o1")) == []


async def test_expired_answers_are_removed_and_counted() -> None:
    storage, clock, seen = MemoryStorage(100), Clock(), list[str]()
    pending = PendingAnswers(storage, ttl=10.0, limit=10, observe=seen.append, clock=clock)
    await pending.keep("o1", _text("old"), "h", "test")
    clock.now += 11.0
    await pending.keep("o1", _text("new"), "h", "test")
    taken = await pending.take("o1", await storage.get_record("follower:o1"))
    assert [a.payload["text"]["content"] for a in taken] == ["new"]
    assert seen.count("expired") == 1
    assert await storage.get_record("follower:o1") == {}


async def test_over_the_limit_the_oldest_is_dropped() -> None:
    storage, seen = MemoryStorage(100), list[str]()
    pending = PendingAnswers(storage, ttl=60.0, limit=2, observe=seen.append)
    for n in range(3):
        await pending.keep("o1", _text(f"a{n}"), "h", "test")
    waiting = waiting_in(await storage.get_record("follower:o1"))
    assert [a.payload["text"]["content"] for a in waiting] == ["a1", "a2"]
    assert seen.count("dropped") == 1


async def test_a_sweep_expires_answers_of_followers_who_never_write_again() -> None:
    storage, clock, seen = MemoryStorage(100), Clock(), list[str]()
    pending = PendingAnswers(storage, ttl=10.0, limit=10, observe=seen.append, clock=clock)
    await pending.keep("o1", _text("old"), "h", "test")
    clock.now += 5.0
    await pending.keep("o2", _text("young"), "h", "test")
    clock.now += 6.0
    assert await pending.sweep() == 1
    assert seen.count("expired") == 1
    assert await storage.get_record("follower:o1") == {}
    assert pending.followers == {"o2"}
    assert len(waiting_in(await storage.get_record("follower:o2"))) == 1
    clock.now += 10.0
    assert await pending.sweep() == 1
    assert pending.followers == set()
    assert await pending.sweep() == 0


def test_an_unreadable_field_reads_as_expired() -> None:
    (answer,) = waiting_in({"pending:1": "not json", "pref:name": "x"})
    assert answer.expires == 0.0


@pytest.mark.parametrize(
    "reply",
    [
        TextReply("你好 ]]> &"),
        ImageReply("M1"),
        VoiceReply("M2"),
        VideoReply("M3", "t", "d"),
        MusicReply("t", "d", "http://m", "http://hq", "TH"),
        NewsReply((Article("a", "b", "http://p", "http://u"),)),
    ],
)
def test_a_payload_reads_back_as_its_reply(reply: Reply) -> None:
    payload = customer_service_payload(reply, "o1")
    assert reply_from_payload(payload) == reply


@pytest.mark.parametrize(
    "payload", [None, {}, {"msgtype": "text"}, {"msgtype": "text", "text": {}}, {"msgtype": "x"}]
)
def test_a_payload_that_is_no_reply_reads_as_none(payload: object) -> None:
    assert reply_from_payload(payload) is None


def _msg(kind: str) -> Message:
    if kind == "text":
        fields = {"MsgType": "text", "Content": "x", "MsgId": "1"}
    else:
        fields = {"MsgType": "event", "Event": kind}
    return parse_message({"FromUserName": "o1", "ToUserName": "gh", "CreateTime": "1", **fields})


def test_a_message_allows_five_and_a_click_three_for_a_minute() -> None:
    clock = Clock()
    quota = CustomerServiceQuota(10, clock)
    assert quota.take("unknown")  # never seen: the platform decides
    quota.granted(_msg("text"))
    assert [quota.take("o1") for _ in range(6)] == [True] * 5 + [False]
    quota.granted(_msg("CLICK"))
    assert [quota.take("o1") for _ in range(4)] == [True] * 3 + [False]
    quota.granted(_msg("CLICK"))
    clock.now += 61.0
    assert not quota.take("o1")
    quota.granted(_msg("LOCATION"))
    assert not quota.take("o1")  # a location report opens no allowance


def test_a_click_does_not_shrink_a_live_message_allowance() -> None:
    quota = CustomerServiceQuota(10, Clock())
    quota.granted(_msg("text"))
    quota.granted(_msg("CLICK"))
    assert [quota.take("o1") for _ in range(6)] == [True] * 5 + [False]
