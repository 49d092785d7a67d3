"""Template messages and subscription notices through the fake; their result events typed."""

from __future__ import annotations

import pytest

from bot import SubscribeMsgEvent, SubscribeNotice, TemplateSendJobFinishEvent
from bot.client.api import LimitError, WeChatAPI, WeChatAPIError
from bot.client.notices import MiniProgram
from bot.testing.fake_wechat import FakeWeChat
from bot.wechat.messages import parse_message
from bot.wechat.xml import parse_body

SHIPPED = {"thing1": "运动鞋", "character_string2": "SF1234567890", "time3": "2026-12-04 18:00"}


async def test_a_template_message_is_sent_and_numbered(
    platform_api: WeChatAPI, platform: FakeWeChat
) -> None:
    msgid = await platform_api.templates.send(
        "o_demo_wang",
        "TPL_ORDER_SHIPPED",
        SHIPPED,
        url="https://example.com/orders/1",
        miniprogram=MiniProgram("wx_mini", "pages/order?id=1"),
    )
    sent = platform.notices.templates_sent[-1]
    assert sent["msgid"] == msgid > 0
    assert sent["data"]["thing1"] == {"value": "运动鞋"}
    assert sent["miniprogram"] == {"appid": "wx_mini", "pagepath": "pages/order?id=1"}


async def test_a_client_msg_id_makes_a_resend_the_same_message(
    platform_api: WeChatAPI, platform: FakeWeChat
) -> None:
    first = await platform_api.templates.send(
        "o_demo_wang", "TPL_ORDER_SHIPPED", SHIPPED, client_msg_id="order-1"
    )
    again = await platform_api.templates.send(
        "o_demo_wang", "TPL_ORDER_SHIPPED", SHIPPED, client_msg_id="order-1"
    )
    assert first == again
    assert len(platform.notices.templates_sent) == 1


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        ({**SHIPPED, "thing1": "一" * 21}, "data.thing1.value", "at most 20 characters"),
        ({"thing1": "a", "phrase3": "六个字的词语"}, "data.phrase3.value", "at most 5 characters"),
        ({**SHIPPED, "character_string2": "x" * 21}, "data.character_string2.value", "at most 20"),
        ({**SHIPPED, "thing1": "两行\n文字"}, "data.thing1.value", "line breaks"),
        ({**SHIPPED, "thing1": ""}, "data.thing1.value", "must not be empty"),
        ({}, "data", "at least one field"),
    ],
)
async def test_values_over_their_limit_are_refused_first(
    platform_api: WeChatAPI,
    platform: FakeWeChat,
    data: dict[str, str],
    field: str,
    problem: str,
) -> None:
    with pytest.raises(LimitError) as info:
        await platform_api.templates.send("o_demo_wang", "TPL_ORDER_SHIPPED", data)
    assert info.value.field == field
    assert problem in info.value.problem
    assert platform.counters["template_send"] == 0


async def test_the_platforms_refusals(platform_api: WeChatAPI) -> None:
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.templates.send("o_demo_wang", "TPL_NOPE", SHIPPED)
    assert info.value.errcode == 40037
    with pytest.raises(WeChatAPIError) as info:  # a keyword the template does not have
        await platform_api.templates.send("o_demo_wang", "TPL_ORDER_SHIPPED", {"thing1": "x"})
    assert info.value.errcode == 47003
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.templates.send("o_demo_gone", "TPL_ORDER_SHIPPED", SHIPPED)
    assert info.value.errcode == 43004


async def test_a_notice_needs_the_followers_consent(
    platform_api: WeChatAPI, platform: FakeWeChat
) -> None:
    data = {"thing1": "年终音乐会", "time2": "2026-12-31 19:30"}
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.notices.send("o_demo_wang", "NOTICE_EVENT_REMINDER", data)
    assert info.value.errcode == 43101
    assert "not accepted" in str(info.value)
    platform.notices.accept_notice("o_demo_wang", "NOTICE_EVENT_REMINDER")
    await platform_api.notices.send("o_demo_wang", "NOTICE_EVENT_REMINDER", data, page="pages/x")
    assert platform.notices.notices_sent[-1]["page"] == "pages/x"
    with pytest.raises(LimitError):
        await platform_api.notices.send(
            "o_demo_wang", "NOTICE_EVENT_REMINDER", {"thing1": "x" * 21}
        )
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.notices.send("o_demo_wang", "NOTICE_NOPE", data)
    assert info.value.errcode == 40037


def test_the_result_events_are_typed() -> None:
    finished = parse_message(
        parse_body(
            b"<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName>"
            b"<CreateTime>1</CreateTime><MsgType>event</MsgType>"
            b"<Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163836</MsgID>"
            b"<Status>failed:user block</Status></xml>"
        )
    )
    assert isinstance(finished, TemplateSendJobFinishEvent)
    assert (finished.msg_id, finished.delivered) == ("200163836", False)
    popup = parse_message(
        parse_body(
            b"<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName>"
            b"<CreateTime>1</CreateTime><MsgType>event</MsgType>"
            b"<Event>subscribe_msg_popup_event</Event><SubscribeMsgPopupEvent>"
            b"<List><TemplateId>T1</TemplateId><SubscribeStatusString>accept"
            b"</SubscribeStatusString><PopupScene>2</PopupScene></List>"
            b"<List><TemplateId>T2</TemplateId><SubscribeStatusString>reject"
            b"</SubscribeStatusString><PopupScene>2</PopupScene></List>"
            b"</SubscribeMsgPopupEvent></xml>"
        )
    )
    assert isinstance(popup, SubscribeMsgEvent)
    assert popup.notices == (
        SubscribeNotice("T1", "accept", popup_scene="2"),
        SubscribeNotice("T2", "reject", popup_scene="2"),
    )
    assert [n.accepted for n in popup.notices] == [True, False]
    item = {"TemplateId": "T1", "MsgID": "1700", "ErrorCode": "0", "ErrorStatus": "success"}
    common = {"ToUserName": "gh", "FromUserName": "o1", "CreateTime": 1, "MsgType": "event"}
    sent = parse_message({**common, "Event": "subscribe_msg_sent_event", "List": item})  # JSON
    assert isinstance(sent, SubscribeMsgEvent)
    assert sent.notices == (SubscribeNotice("T1", "success", msg_id="1700"),)
