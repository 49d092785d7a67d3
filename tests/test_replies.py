"""Passive replies: rendering, reading back, news limits and late-delivery payloads."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.wechat.replies import (
    ARTICLE_LIMIT,
    ARTICLE_LIMIT_FOR_USER_MESSAGES,
    Article,
    ImageReply,
    MusicReply,
    NewsReply,
    Reply,
    TextReply,
    TransferCustomerServiceReply,
    VideoReply,
    VoiceReply,
    customer_service_payload,
    max_articles_for,
    parse_reply,
    render_reply,
)
from bot.wechat.xml import BodyError

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
ACCOUNT = "gh_3d5e2b1a9c7f"
TRICKY = "a]]>b <c> & d 😀 你好 ]]]]> ]]"
HEADER = {"ToUserName": OPENID, "FromUserName": ACCOUNT, "CreateTime": "1700000000"}


def render(reply: Reply, max_articles: int = ARTICLE_LIMIT) -> str:
    """Render as the webhook does: to the follower, from the account."""
    return render_reply(
        reply, to_user=OPENID, from_user=ACCOUNT, create_time=1700000000, max_articles=max_articles
    )


def article(n: int) -> Article:
    """A distinct article."""
    return Article(f"title {n}", f"desc {n}", f"https://p/{n}.jpg", f"https://u/{n}")


def test_text_reply_renders_exactly() -> None:
    assert render(TextReply("你好")) == (
        f"<xml><ToUserName><![CDATA[{OPENID}]]></ToUserName>"
        f"<FromUserName><![CDATA[{ACCOUNT}]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[你好]]></Content></xml>"
    )


def test_cdata_terminator_is_split_across_sections() -> None:
    assert "<Content><![CDATA[a]]]]><![CDATA[>b]]></Content>" in render(TextReply("a]]>b"))


@pytest.mark.parametrize(
    ("reply", "fields"),
    [
        (TextReply(TRICKY), {"MsgType": "text", "Content": TRICKY}),
        (TextReply(""), {"MsgType": "text", "Content": ""}),
        (
            TextReply("line 1\r\nline 2\rend"),
            {"MsgType": "text", "Content": "line 1\r\nline 2\rend"},
        ),
        (ImageReply(TRICKY), {"MsgType": "image", "Image": {"MediaId": TRICKY}}),
        (VoiceReply("media_voice"), {"MsgType": "voice", "Voice": {"MediaId": "media_voice"}}),
        (
            VideoReply("media_video", title="标题 ]]>", description="<b>&amp;</b>"),
            {
                "MsgType": "video",
                "Video": {
                    "MediaId": "media_video",
                    "Title": "标题 ]]>",
                    "Description": "<b>&amp;</b>",
                },
            },
        ),
        (
            VideoReply("media_video"),
            {
                "MsgType": "video",
                "Video": {"MediaId": "media_video", "Title": "", "Description": ""},
            },
        ),
        (
            MusicReply("歌", "desc 🎵", "https://m/1.mp3?a=1&b=2", "https://m/hq.mp3", "thumb"),
            {
                "MsgType": "music",
                "Music": {
                    "Title": "歌",
                    "Description": "desc 🎵",
                    "MusicUrl": "https://m/1.mp3?a=1&b=2",
                    "HQMusicUrl": "https://m/hq.mp3",
                    "ThumbMediaId": "thumb",
                },
            },
        ),
        (
            NewsReply((Article(TRICKY, "d", "https://p/x.jpg", "https://u?x=1&y=]]>"),)),
            {
                "MsgType": "news",
                "ArticleCount": "1",
                "Articles": [
                    {
                        "Title": TRICKY,
                        "Description": "d",
                        "PicUrl": "https://p/x.jpg",
                        "Url": "https://u?x=1&y=]]>",
                    }
                ],
            },
        ),
        (
            NewsReply((Article("only a title"), article(2))),
            {
                "MsgType": "news",
                "ArticleCount": "2",
                "Articles": [
                    {"Title": "only a title", "Description": "", "PicUrl": "", "Url": ""},
                    {
                        "Title": "title 2",
                        "Description": "desc 2",
                        "PicUrl": "https://p/2.jpg",
                        "Url": "https://u/2",
                    },
                ],
            },
        ),
        (TransferCustomerServiceReply(), {"MsgType": "transfer_customer_service"}),
        (
            TransferCustomerServiceReply("kf2001@gh_3d5e2b1a9c7f"),
            {
                "MsgType": "transfer_customer_service",
                "TransInfo": {"KfAccount": "kf2001@gh_3d5e2b1a9c7f"},
            },
        ),
    ],
)
def test_every_reply_reads_back_to_its_values(reply: Reply, fields: dict[str, Any]) -> None:
    assert parse_reply(render(reply)) == HEADER | fields


def test_characters_xml_forbids_are_dropped_so_the_answer_stays_well_formed() -> None:
    xml = render(TextReply("a\x1db\x00c\ud800d\ufffee\uffff\x0bf\tg"))
    assert parse_reply(xml)["Content"] == "abcdef\tg"


@pytest.mark.parametrize(("count", "limit", "kept"), [(10, 8, 8), (3, 8, 3), (3, 1, 1), (3, 0, 1)])
def test_news_is_cut_to_the_limit(count: int, limit: int, kept: int) -> None:
    fields = parse_reply(render(NewsReply(tuple(article(n) for n in range(count))), limit))
    assert fields["ArticleCount"] == str(kept)
    assert [item["Title"] for item in fields["Articles"]] == [f"title {n}" for n in range(kept)]


def test_news_needs_an_article_and_freezes_a_list() -> None:
    with pytest.raises(ValueError, match="at least one Article"):
        NewsReply(())
    news = NewsReply([article(1)])  # type: ignore[arg-type]
    assert news.articles == (article(1),)
    assert type(news.articles) is tuple


@pytest.mark.parametrize(
    ("msg_type", "limit"),
    [
        ("text", 1),
        ("image", 1),
        ("voice", 1),
        ("video", 1),
        ("shortvideo", 1),
        ("location", 1),
        ("link", 1),
        ("event", 8),
        ("miniprogrampage", 8),
    ],
)
def test_max_articles_for(msg_type: str, limit: int) -> None:
    assert max_articles_for(msg_type) == limit
    assert (ARTICLE_LIMIT_FOR_USER_MESSAGES, ARTICLE_LIMIT) == (1, 8)


def test_rendering_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not a Reply: str"):
        render("hello")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reply", "payload"),
    [
        (TextReply("你好 😀"), {"msgtype": "text", "text": {"content": "你好 😀"}}),
        (ImageReply("m1"), {"msgtype": "image", "image": {"media_id": "m1"}}),
        (VoiceReply("m2"), {"msgtype": "voice", "voice": {"media_id": "m2"}}),
        (
            VideoReply("m3", "t", "d"),
            {"msgtype": "video", "video": {"media_id": "m3", "title": "t", "description": "d"}},
        ),
        (
            MusicReply("t", "d", "https://m/1.mp3", "https://m/hq.mp3", "thumb"),
            {
                "msgtype": "music",
                "music": {
                    "title": "t",
                    "description": "d",
                    "musicurl": "https://m/1.mp3",
                    "hqmusicurl": "https://m/hq.mp3",
                    "thumb_media_id": "thumb",
                },
            },
        ),
        (
            # only the first article: the customer-service API refuses more (45008)
            NewsReply((article(1), article(2))),
            {
                "msgtype": "news",
                "news": {
                    "articles": [
                        {
                            "title": "title 1",
                            "description": "desc 1",
                            "url": "https://u/1",
                            "picurl": "https://p/1.jpg",
                        }
                    ]
                },
            },
        ),
    ],
)
def test_customer_service_payload(reply: Reply, payload: dict[str, Any]) -> None:
    assert customer_service_payload(reply, OPENID) == {"touser": OPENID} | payload


def test_transfer_cannot_be_delivered_late() -> None:
    assert customer_service_payload(TransferCustomerServiceReply(), OPENID) is None
    assert customer_service_payload(TransferCustomerServiceReply("kf@x"), OPENID) is None


def test_parse_reply_refuses_what_is_not_reply_xml() -> None:
    with pytest.raises(BodyError):
        parse_reply("success")
    with pytest.raises(BodyError) as caught:
        parse_reply("<xml><Content>\ud800</Content></xml>")
    assert caught.value.reason == "encoding"


# Everything XML 1.0 can carry: no surrogates, no controls but TAB/LF/CR, no U+FFFE/U+FFFF
xml_text = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs"],
        exclude_characters=[chr(c) for c in range(0x20) if c not in (9, 10, 13)]
        + ["\ufffe", "\uffff"],
    )
)


@given(xml_text)
def test_any_text_round_trips(text: str) -> None:
    assert parse_reply(render(TextReply(text)))["Content"] == text


@given(xml_text, xml_text, st.integers(min_value=0, max_value=2**40))
def test_header_values_round_trip(to_user: str, from_user: str, create_time: int) -> None:
    xml = render_reply(
        TextReply("x"), to_user=to_user, from_user=from_user, create_time=create_time
    )
    fields = parse_reply(xml)
    assert (fields["ToUserName"], fields["FromUserName"]) == (to_user, from_user)
    assert fields["CreateTime"] == str(create_time)
