"""The webhook over HTTP: handshake, every message and reply type, and every bad input."""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
import zlib
from typing import Any

import pytest

from bot.testing.pytest_plugin import BotFactory, BotUnderTest
from bot.testing.simulator import build_xml, event_fields, sign_request, text_fields
from bot.wechat.signature import sha1_signature

SAMPLES = ["sample_handlers"]


async def _post(bot: BotUnderTest, params: dict[str, str], body: bytes) -> tuple[int, str]:
    async with bot.client.post(bot.config.webhook_path, params=params, data=body) as resp:
        return resp.status, await resp.text()


def _signed(bot: BotUnderTest, xml: str, **kw: Any) -> tuple[dict[str, str], bytes]:
    request = sign_request(bot.config.token, xml, **kw)
    return request.params, request.body


# -- handshake ---------------------------------------------------------------------------------


async def test_handshake_echoes_echostr(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    ts, nonce = str(int(time.time())), "12345"
    params = {
        "signature": sha1_signature(bot.config.token, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "echostr": "echo-7788",
    }
    async with bot.client.get("/wechat", params=params) as resp:
        assert resp.status == 200
        assert await resp.text() == "echo-7788"


async def test_handshake_refuses_bad_signature_and_missing_parameters(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot()
    bad = {"signature": "0" * 40, "timestamp": "1", "nonce": "2", "echostr": "x"}
    async with bot.client.get("/wechat", params=bad) as resp:
        assert resp.status == 403
    async with bot.client.get("/wechat", params={"echostr": "x"}) as resp:
        assert resp.status == 400


# -- message types -----------------------------------------------------------------------------

MESSAGE_CASES: list[tuple[dict[str, Any], str]] = [
    ({"MsgType": "image", "PicUrl": "http://p", "MediaId": "M1", "MsgId": "1001"}, "image M1"),
    (
        {
            "MsgType": "voice",
            "MediaId": "V",
            "Format": "amr",
            "Recognition": "你好",
            "MsgId": "1002",
        },
        "voice amr 你好",
    ),
    ({"MsgType": "video", "MediaId": "VID", "ThumbMediaId": "T", "MsgId": "1003"}, "video VID"),
    (
        {"MsgType": "shortvideo", "MediaId": "SV", "ThumbMediaId": "T", "MsgId": "1004"},
        "shortvideo SV",
    ),
    (
        {
            "MsgType": "location",
            "Location_X": "23.1",
            "Location_Y": "113.3",
            "Scale": "20",
            "Label": "广州",
            "MsgId": "1005",
        },
        "location 23.1 113.3 广州",
    ),
    (
        {"MsgType": "link", "Title": "t", "Description": "d", "Url": "http://l", "MsgId": "1006"},
        "link http://l",
    ),
    ({"MsgType": "event", "Event": "CLICK", "EventKey": "MENU_A"}, "menu A"),
    ({"MsgType": "event", "Event": "click", "EventKey": "OTHER"}, "ClickEvent click OTHER"),
    (
        {"MsgType": "event", "Event": "subscribe", "EventKey": "qrscene_42", "Ticket": "TK"},
        "SubscribeEvent subscribe qrscene_42",
    ),
    ({"MsgType": "event", "Event": "SCAN", "EventKey": "42", "Ticket": "TK"}, "ScanEvent scan 42"),
    (
        {
            "MsgType": "event",
            "Event": "LOCATION",
            "Latitude": "23.1",
            "Longitude": "113.3",
            "Precision": "119.3",
        },
        "LocationEvent location ",
    ),
    (
        {"MsgType": "event", "Event": "VIEW", "EventKey": "http://v", "MenuId": "9"},
        "ViewEvent view http://v",
    ),
    (
        {
            "MsgType": "event",
            "Event": "scancode_push",
            "EventKey": "s1",
            "ScanCodeInfo": {"ScanType": "qrcode", "ScanResult": "R"},
        },
        "ScanCodeEvent scancode_push s1",
    ),
    (
        {
            "MsgType": "event",
            "Event": "pic_weixin",
            "EventKey": "p1",
            "SendPicsInfo": {"Count": 1, "PicList": {"item": {"PicMd5Sum": "abc"}}},
        },
        "PicSendEvent pic_weixin p1",
    ),
    (
        {"MsgType": "event", "Event": "TEMPLATESENDJOBFINISH", "MsgID": "200", "Status": "success"},
        "TemplateSendJobFinishEvent templatesendjobfinish ",
    ),
    ({"MsgType": "event", "Event": "brand_new_event"}, "UnknownEvent brand_new_event "),
    ({"MsgType": "hologram", "MsgId": "1007"}, "other UnknownMessage hologram"),
]


@pytest.mark.parametrize(("fields", "expected"), MESSAGE_CASES)
async def test_every_message_type_is_parsed_and_routed(
    wechat_bot: BotFactory, fields: dict[str, Any], expected: str
) -> None:
    bot = await wechat_bot(handlers=SAMPLES)
    full = {
        "ToUserName": "gh_test_account",
        "FromUserName": "o_demo_wang",
        "CreateTime": int(time.time()),
        **fields,
    }
    reply = await bot.send_fields(full)
    assert reply.status == 200
    assert reply.content == expected


# -- reply types -------------------------------------------------------------------------------


async def test_every_reply_type_renders_and_parses_back(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=SAMPLES)
    image = await bot.send_text("o_demo_wang", "reply image")
    assert image.msg_type == "image" and image.fields["Image"] == {"MediaId": "MEDIA_IMG"}
    voice = await bot.send_text("o_demo_wang", "reply voice")
    assert voice.fields["Voice"] == {"MediaId": "MEDIA_VOICE"}
    video = await bot.send_text("o_demo_wang", "reply video")
    assert video.fields["Video"] == {
        "MediaId": "MEDIA_VIDEO",
        "Title": "A title ]]> <b>&",
        "Description": "描述",
    }
    music = await bot.send_text("o_demo_wang", "reply music")
    assert music.fields["Music"] == {
        "Title": "Song",
        "Description": "Desc",
        "MusicUrl": "http://m/1.mp3",
        "HQMusicUrl": "http://m/1hq.mp3",
        "ThumbMediaId": "THUMB",
    }
    human = await bot.send_text("o_demo_wang", "reply human")
    assert human.msg_type == "transfer_customer_service"
    agent = await bot.send_text("o_demo_wang", "reply agent")
    assert agent.fields["TransInfo"] == {"KfAccount": "kf2001@account"}


async def test_news_is_cut_to_one_article_in_answer_to_a_text(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=SAMPLES)
    news = await bot.send_text("o_demo_wang", "reply news")
    assert news.msg_type == "news"
    assert str(news.fields["ArticleCount"]) == "1"
    articles = news.fields["Articles"]
    assert isinstance(articles, list) and [a["Title"] for a in articles] == ["First"]


@pytest.mark.parametrize(
    "text",
    ["]]>", "a]]>b]]>c", "<xml>&amp;</xml>", "emoji 🎉 and 中文", "line\nbreak", "  spaced  "],
)
async def test_any_text_round_trips(wechat_bot: BotFactory, text: str) -> None:
    bot = await wechat_bot(handlers=SAMPLES)
    reply = await bot.send_text("o_demo_wang", f"echo {text}")
    assert reply.content == text


async def test_skip_lets_the_next_route_answer(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=SAMPLES)
    assert (await bot.send_text("o_demo_wang", "pass")).content == "second handler answered"


async def test_none_answers_success(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=SAMPLES)
    reply = await bot.send_text("o_demo_wang", "silent")
    assert reply.is_success and reply.body == "success"


async def test_raising_handler_answers_success_and_logs_its_name(
    wechat_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await wechat_bot(handlers=SAMPLES)
    with caplog.at_level(logging.ERROR):
        reply = await bot.send_text("o_demo_wang", "boom", msg_id="555000")
    assert reply.is_success
    failure = [r for r in caplog.records if "boom" in r.getMessage()]
    assert failure and "555000" in failure[0].getMessage()
    assert (await bot.client.get("/healthz")).status == 200


async def test_handlers_run_in_registration_order_across_modules(wechat_bot: BotFactory) -> None:
    # the greeting module first: its catch-all text route wins over the samples
    bot = await wechat_bot(handlers=["handlers.greeting", *SAMPLES])
    assert (
        await bot.send_text("o_demo_wang", "echo hi")
    ).content == "Hello! Welcome to Test Account."


# -- bad input ---------------------------------------------------------------------------------


async def test_missing_or_bad_signature_is_403(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    params, body = _signed(bot, build_xml(text_fields("o_demo_wang", "hi")))
    assert (await _post(bot, {k: v for k, v in params.items() if k != "signature"}, body))[0] == 403
    assert (await _post(bot, {**params, "signature": "f" * 40}, body))[0] == 403
    assert (await _post(bot, {**params, "signature": "not-hex"}, body))[0] == 403


async def test_missing_timestamp_or_nonce_is_400(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    params, body = _signed(bot, build_xml(text_fields("o_demo_wang", "hi")))
    assert (await _post(bot, {k: v for k, v in params.items() if k != "nonce"}, body))[0] == 400


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"<xml><ToUserName>a</ToUserName>", 400),  # malformed
        (b"", 400),
        (b"\xff\xfe<xml/>", 400),  # invalid UTF-8
        (b"<xml><ToUserName>a</ToUserName><MsgType>text</MsgType></xml>", 400),  # no FromUserName
        (b"<xml><FromUserName>o</FromUserName></xml>", 400),  # no MsgType
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<xml><FromUserName>&b;</FromUserName><MsgType>text</MsgType></xml>",
            400,
        ),
        (
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b"<xml><FromUserName>&e;</FromUserName><MsgType>text</MsgType></xml>",
            400,
        ),
        (b"{not json", 400),
    ],
)
async def test_bad_bodies_are_400(wechat_bot: BotFactory, body: bytes, status: int) -> None:
    bot = await wechat_bot()
    ts, nonce = str(int(time.time())), str(time.perf_counter_ns())
    params = {
        "signature": sha1_signature(bot.config.token, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
    }
    assert (await _post(bot, params, body))[0] == status
    assert (await bot.client.get("/healthz")).status == 200


async def test_oversized_body_is_413(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(max_body_bytes=1024)
    xml = build_xml(text_fields("o_demo_wang", "x" * 2000))
    params, body = _signed(bot, xml)
    assert (await _post(bot, params, body))[0] == 413


async def test_control_characters_inside_content_are_tolerated(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=SAMPLES)
    xml = build_xml(text_fields("o_demo_wang", "echo a\x1db"))
    params, body = _signed(bot, xml)
    status, answer = await _post(bot, params, body)
    assert status == 200 and "<MsgType><![CDATA[text]]></MsgType>" in answer


async def test_stale_timestamp_is_403(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    xml = build_xml(text_fields("o_demo_wang", "hi"))
    old = str(int(time.time()) - 301)
    params, body = _signed(bot, xml, timestamp=old)
    assert (await _post(bot, params, body))[0] == 403
    future = str(int(time.time()) + 301)
    params, body = _signed(bot, xml, timestamp=future)
    assert (await _post(bot, params, body))[0] == 403


async def test_window_can_be_turned_off(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(timestamp_window=0)
    params, body = _signed(bot, build_xml(text_fields("o_demo_wang", "hi")), timestamp="1000")
    assert (await _post(bot, params, body))[0] == 200


async def test_nonce_reused_for_another_body_is_403(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    first = _signed(bot, build_xml(text_fields("o_demo_wang", "hi")), nonce="777")
    assert (await _post(bot, *first))[0] == 200
    second = _signed(bot, build_xml(text_fields("o_demo_wang", "other")), nonce="777")
    assert (await _post(bot, *second))[0] == 403


async def test_nonce_check_can_be_turned_off(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(nonce_check=False)
    first = _signed(bot, build_xml(text_fields("o_demo_wang", "hi")), nonce="778")
    second = _signed(bot, build_xml(text_fields("o_demo_wang", "other")), nonce="778")
    assert (await _post(bot, *first))[0] == 200
    assert (await _post(bot, *second))[0] == 200


async def test_identical_retransmission_gets_the_same_answer(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    request = _signed(bot, build_xml(text_fields("o_demo_wang", "你好", msg_id="4242")), nonce="9")
    first, second = await _post(bot, *request), await _post(bot, *request)
    assert first[0] == second[0] == 200
    assert first[1] == second[1] and "欢迎关注" in first[1]


async def test_two_followers_reusing_a_msg_id_each_get_their_own_greeting(
    wechat_bot: BotFactory,
) -> None:
    bot = await wechat_bot()
    alice = await bot.send_fields(text_fields("o_demo_alice", "hello", msg_id="777"))
    lin = await bot.send_fields(text_fields("o_demo_lin", "你好", msg_id="777"))
    assert (alice.content, alice.fields["ToUserName"]) == (
        "Hello, Alice! Welcome to Test Account.",
        "o_demo_alice",
    )
    assert (lin.content, lin.fields["ToUserName"]) == (
        "你好，林老師！欢迎关注Test Account。",
        "o_demo_lin",
    )
    # WeChat's retry of Lin's message (fresh nonce) is still the same message
    retry = await bot.send_fields(text_fields("o_demo_lin", "你好", msg_id="777"))
    assert retry.body == lin.body
    async with bot.client.get("/metrics") as resp:
        metrics = await resp.text()
    assert 'wechat_bot_requests_total{msg_type="text",outcome="duplicate"} 1.0' in metrics
    assert 'wechat_bot_requests_total{msg_type="text",outcome="replied"} 2.0' in metrics


async def test_json_push_is_accepted(wechat_bot: BotFactory) -> None:
    import json

    bot = await wechat_bot()
    fields = event_fields("o_demo_wang", "subscribe")
    ts, nonce = str(int(time.time())), "31337"
    params = {
        "signature": sha1_signature(bot.config.token, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
    }
    status, body = await _post(bot, params, json.dumps(fields).encode())
    assert status == 200 and "欢迎关注" in body


@pytest.mark.parametrize(
    "fields",
    [
        r'"FromUserName": "o_\ud800", "MsgType": "text", "Content": "你好"',
        r'"FromUserName": "o_demo_wang", "MsgType": "text", "Content": "\udc00"',
    ],
)
async def test_json_push_with_a_lone_surrogate_is_400_before_any_handler(
    wechat_bot: BotFactory, fields: str, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await wechat_bot()  # the greeting: it would fetch a profile and store a follower
    json_push = '{"ToUserName": "gh_1", "CreateTime": 1700000000, "MsgId": "5", ' + fields + "}"
    with caplog.at_level(logging.WARNING):
        status, answer = await _post(bot, *_signed(bot, json_push))
    assert (status, answer) == (400, "bad message: encoding\n")
    assert bot.fake.counters["user_info"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_healthz_and_metrics(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    await bot.send_text("o_demo_wang", "hi")
    async with bot.client.get("/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"
    async with bot.client.get("/metrics") as resp:
        text = await resp.text()
    assert 'wechat_bot_requests_total{msg_type="text",outcome="replied"} 1.0' in text
    assert "wechat_bot_token_refreshes_total 1.0" in text
    assert 'wechat_bot_upstream_calls_total{endpoint="user_info",errcode="0"} 1.0' in text


async def test_concurrent_bad_requests_never_produce_a_500(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot()
    ts = str(int(time.time()))
    bodies = [b"<xml>", b"\x00\x01", b"<xml><a>" * 50, b"[]", b"null", b"<xml></xml>"] * 5
    results = await asyncio.gather(
        *(
            _post(
                bot,
                {
                    "signature": sha1_signature(bot.config.token, ts, str(i)),
                    "timestamp": ts,
                    "nonce": str(i),
                },
                b,
            )
            for i, b in enumerate(bodies)
        )
    )
    assert all(400 <= status < 500 for status, _ in results)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "GZIP"])
@pytest.mark.parametrize("valid", [True, False])
async def test_a_compressed_push_is_400_not_500(
    wechat_bot: BotFactory, encoding: str, valid: bool
) -> None:
    bot = await wechat_bot()
    params, plain = _signed(bot, build_xml(text_fields("o_a", "hi")))
    packed = gzip.compress(plain) if encoding.lower() == "gzip" else zlib.compress(plain)
    async with bot.client.post(
        bot.config.webhook_path,
        params=params,
        data=packed if valid else plain,  # not compressed at all: aiohttp cannot inflate it
        headers={"Content-Encoding": encoding},
    ) as resp:
        assert (resp.status, await resp.text()) == (400, "compressed bodies are not accepted\n")
