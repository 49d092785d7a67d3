"""parse_message: every incoming type of platform notes §5, from realistic pushes."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.wechat.messages import (
    ClickEvent,
    Event,
    ImageMessage,
    LinkMessage,
    LocationEvent,
    LocationMessage,
    LocationSelectEvent,
    MassSendJobFinishEvent,
    Message,
    MessageError,
    PicSendEvent,
    ScanCodeEvent,
    ScanEvent,
    SubscribeEvent,
    SubscribeMsgEvent,
    TemplateSendJobFinishEvent,
    TextMessage,
    UnknownEvent,
    UnknownMessage,
    UnsubscribeEvent,
    VideoMessage,
    ViewEvent,
    VoiceMessage,
    parse_message,
    text_of,
)
from bot.wechat.xml import parse_body

ACCOUNT = "gh_3d5e2b1a9c7f"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


def push(msg_type: str, body: str, create_time: str = "1700000000") -> str:
    """A push as the platform formats it: CDATA strings, bare numbers, one field a line."""
    return f"""<xml>
  <ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>
  <FromUserName><![CDATA[{OPENID}]]></FromUserName>
  <CreateTime>{create_time}</CreateTime>
  <MsgType><![CDATA[{msg_type}]]></MsgType>
  {body}
</xml>"""


def event(name: str, body: str = "") -> str:
    """An event push."""
    return push("event", f"<Event><![CDATA[{name}]]></Event>\n  {body}")


SAMPLES: dict[str, str] = {
    "text": push("text", "<Content><![CDATA[你好]]></Content>\n  <MsgId>24318425512345678</MsgId>"),
    "text_from_article": push(
        "text",
        "<Content><![CDATA[赞]]></Content><MsgId>24318425512345679</MsgId>"
        "<MsgDataId>2247483650</MsgDataId><Idx>1</Idx>",
    ),
    "image": push(
        "image",
        "<PicUrl><![CDATA[http://mmbiz.qpic.cn/mmbiz_jpg/abc/0]]></PicUrl>"
        "<MediaId><![CDATA[media_img_1]]></MediaId><MsgId>24318425512345680</MsgId>",
    ),
    "voice": push(
        "voice",
        "<MediaId><![CDATA[media_voice_1]]></MediaId><Format><![CDATA[amr]]></Format>"
        "<Recognition><![CDATA[今天天气怎么样]]></Recognition><MsgId>24318425512345681</MsgId>",
    ),
    "voice_unrecognised": push(
        "voice",
        "<MediaId><![CDATA[media_voice_2]]></MediaId><Format><![CDATA[speex]]></Format>"
        "<Recognition><![CDATA[]]></Recognition><MsgId>24318425512345682</MsgId>",
    ),
    "video": push(
        "video",
        "<MediaId><![CDATA[media_video_1]]></MediaId>"
        "<ThumbMediaId><![CDATA[media_thumb_1]]></ThumbMediaId><MsgId>24318425512345683</MsgId>",
    ),
    "shortvideo": push(
        "shortvideo",
        "<MediaId><![CDATA[media_video_2]]></MediaId>"
        "<ThumbMediaId><![CDATA[media_thumb_2]]></ThumbMediaId><MsgId>24318425512345684</MsgId>",
    ),
    "location": push(
        "location",
        "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y>"
        "<Scale>20</Scale><Label><![CDATA[广州市天河区天河路]]></Label>"
        "<MsgId>24318425512345685</MsgId>",
    ),
    "link": push(
        "link",
        "<Title><![CDATA[公众平台官网链接]]></Title>"
        "<Description><![CDATA[公众平台官网链接]]></Description>"
        "<Url><![CDATA[https://mp.weixin.qq.com/s/abc]]></Url><MsgId>24318425512345686</MsgId>",
    ),
    "subscribe": event("subscribe", "<EventKey><![CDATA[]]></EventKey>"),
    "subscribe_qrscene": event(
        "subscribe",
        "<EventKey><![CDATA[qrscene_123123]]></EventKey>"
        "<Ticket><![CDATA[gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2==]]></Ticket>",
    ),
    "unsubscribe": event("unsubscribe", "<EventKey><![CDATA[]]></EventKey>"),
    "scan": event(
        "SCAN",
        "<EventKey><![CDATA[123123]]></EventKey><Ticket><![CDATA[gQH47joAAAAA==]]></Ticket>",
    ),
    "location_event": event(
        "LOCATION",
        "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude>"
        "<Precision>119.385040</Precision>",
    ),
    "click": event("CLICK", "<EventKey><![CDATA[V1001_TODAY_MUSIC]]></EventKey>"),
    "view": event(
        "VIEW", "<EventKey><![CDATA[https://www.qq.com/]]></EventKey><MenuId>208379533</MenuId>"
    ),
    "scancode_push": event(
        "scancode_push",
        "<EventKey><![CDATA[rselfmenu_0_1]]></EventKey>"
        "<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
        "<ScanResult><![CDATA[https://example.com/q?id=1]]></ScanResult></ScanCodeInfo>",
    ),
    "scancode_waitmsg": event(
        "scancode_waitmsg",
        "<EventKey><![CDATA[rselfmenu_0_0]]></EventKey>"
        "<ScanCodeInfo><ScanType><![CDATA[barcode]]></ScanType>"
        "<ScanResult><![CDATA[EAN_13,6901234567892]]></ScanResult></ScanCodeInfo>",
    ),
    "pic_photo_or_album": event(
        "pic_photo_or_album",
        """<EventKey><![CDATA[rselfmenu_1_1]]></EventKey>
  <SendPicsInfo>
    <Count>2</Count>
    <PicList>
      <item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item>
      <item><PicMd5Sum><![CDATA[5a75aaca956d97be686719218f275c6b]]></PicMd5Sum></item>
    </PicList>
  </SendPicsInfo>""",
    ),
    "pic_sysphoto": event(
        "pic_sysphoto",
        "<EventKey><![CDATA[rselfmenu_1_0]]></EventKey><SendPicsInfo><Count>1</Count>"
        "<PicList><item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum>"
        "</item></PicList></SendPicsInfo>",
    ),
    "pic_weixin": event(
        "pic_weixin",
        "<EventKey><![CDATA[rselfmenu_1_2]]></EventKey><SendPicsInfo><Count>1</Count>"
        "<PicList><item><PicMd5Sum><![CDATA[5a75aaca956d97be686719218f275c6b]]></PicMd5Sum>"
        "</item></PicList></SendPicsInfo>",
    ),
    "location_select": event(
        "location_select",
        "<EventKey><![CDATA[rselfmenu_2_0]]></EventKey><SendLocationInfo>"
        "<Location_X><![CDATA[23]]></Location_X><Location_Y><![CDATA[113]]></Location_Y>"
        "<Scale><![CDATA[15]]></Scale><Label><![CDATA[ 广州市海珠区客村艺苑路 106号]]></Label>"
        "<Poiname><![CDATA[]]></Poiname></SendLocationInfo>",
    ),
    "template_finish": event(
        "TEMPLATESENDJOBFINISH",
        "<MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>",
    ),
    "mass_finish": event(
        "MASSSENDJOBFINISH",
        "<MsgID>1000001625</MsgID><Status><![CDATA[send success]]></Status>"
        "<TotalCount>100</TotalCount><FilterCount>80</FilterCount><SentCount>75</SentCount>"
        "<ErrorCount>5</ErrorCount>",
    ),
    "subscribe_msg_popup": event(
        "subscribe_msg_popup_event",
        """<SubscribeMsgPopupEvent>
    <List>
      <TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>
      <SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>
      <PopupScene>2</PopupScene>
    </List>
    <List>
      <TemplateId><![CDATA[9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI]]></TemplateId>
      <SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>
      <PopupScene>2</PopupScene>
    </List>
  </SubscribeMsgPopupEvent>""",
    ),
    "subscribe_msg_change": event(
        "subscribe_msg_change_event",
        "<SubscribeMsgChangeEvent><List>"
        "<TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>"
        "<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>"
        "</List></SubscribeMsgChangeEvent>",
    ),
    "subscribe_msg_sent": event(
        "subscribe_msg_sent_event",
        "<SubscribeMsgSentEvent><List>"
        "<TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>"
        "<MsgID>1700827132819554304</MsgID><ErrorCode>0</ErrorCode>"
        "<ErrorStatus><![CDATA[success]]></ErrorStatus>"
        "</List></SubscribeMsgSentEvent>",
    ),
}


def parsed(name: str) -> Message:
    """The typed message for one of the samples, through the real body parser."""
    return parse_message(parse_body(SAMPLES[name].encode()))


def common(msg: Message, msg_type: str, msg_id: str | None) -> None:
    """Assert the fields every push shares."""
    assert msg.to_user == ACCOUNT
    assert msg.from_user == OPENID
    assert msg.openid == OPENID
    assert msg.create_time == 1700000000
    assert msg.msg_type == msg_type
    assert msg.msg_id == msg_id


def test_text() -> None:
    msg = parsed("text")
    assert type(msg) is TextMessage
    common(msg, "text", "24318425512345678")
    assert (msg.content, msg.msg_data_id, msg.idx) == ("你好", None, None)
    assert msg.raw["Content"] == "你好"
    assert msg.dedup_key == f"{OPENID}:24318425512345678"


def test_text_sent_from_an_article() -> None:
    msg = parsed("text_from_article")
    assert type(msg) is TextMessage
    assert (msg.content, msg.msg_data_id, msg.idx) == ("赞", "2247483650", "1")


def test_image() -> None:
    msg = parsed("image")
    assert type(msg) is ImageMessage
    common(msg, "image", "24318425512345680")
    assert msg.pic_url == "http://mmbiz.qpic.cn/mmbiz_jpg/abc/0"
    assert msg.media_id == "media_img_1"


def test_voice_with_and_without_recognition() -> None:
    msg = parsed("voice")
    assert type(msg) is VoiceMessage
    common(msg, "voice", "24318425512345681")
    assert (msg.media_id, msg.format, msg.recognition) == ("media_voice_1", "amr", "今天天气怎么样")
    silent = parsed("voice_unrecognised")
    assert type(silent) is VoiceMessage
    assert (silent.format, silent.recognition) == ("speex", "")


@pytest.mark.parametrize(("name", "media"), [("video", "1"), ("shortvideo", "2")])
def test_video_and_shortvideo(name: str, media: str) -> None:
    msg = parsed(name)
    assert type(msg) is VideoMessage
    assert msg.msg_type == name
    assert msg.media_id == f"media_video_{media}"
    assert msg.thumb_media_id == f"media_thumb_{media}"


def test_location() -> None:
    msg = parsed("location")
    assert type(msg) is LocationMessage
    common(msg, "location", "24318425512345685")
    assert (msg.location_x, msg.location_y, msg.scale) == (23.134521, 113.358803, 20)
    assert msg.label == "广州市天河区天河路"


def test_link() -> None:
    msg = parsed("link")
    assert type(msg) is LinkMessage
    common(msg, "link", "24318425512345686")
    assert (msg.title, msg.description) == ("公众平台官网链接", "公众平台官网链接")
    assert msg.url == "https://mp.weixin.qq.com/s/abc"


def test_plain_subscribe() -> None:
    msg = parsed("subscribe")
    assert type(msg) is SubscribeEvent
    common(msg, "event", None)
    assert (msg.event, msg.event_key, msg.scene, msg.ticket) == ("subscribe", "", None, None)
    assert msg.dedup_key == f"{OPENID}:1700000000:subscribe:"


def test_subscribe_through_a_parameter_qr_code() -> None:
    msg = parsed("subscribe_qrscene")
    assert type(msg) is SubscribeEvent
    assert msg.event_key == "qrscene_123123"
    assert msg.scene == "123123"
    assert msg.ticket == "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2=="
    assert msg.dedup_key == f"{OPENID}:1700000000:subscribe:qrscene_123123"


def test_subscribe_with_an_empty_scene_has_no_scene() -> None:
    msg = parse_message(
        {"FromUserName": "o1", "MsgType": "event", "Event": "subscribe", "EventKey": "qrscene_"}
    )
    assert type(msg) is SubscribeEvent
    assert msg.scene is None


def test_unsubscribe() -> None:
    msg = parsed("unsubscribe")
    assert type(msg) is UnsubscribeEvent
    assert (msg.event, msg.event_key) == ("unsubscribe", "")


def test_scan() -> None:
    msg = parsed("scan")
    assert type(msg) is ScanEvent
    assert (msg.event, msg.event_key, msg.ticket) == ("scan", "123123", "gQH47joAAAAA==")


def test_location_event() -> None:
    msg = parsed("location_event")
    assert type(msg) is LocationEvent
    assert msg.event == "location"
    assert (msg.latitude, msg.longitude, msg.precision) == (23.137466, 113.352425, 119.38504)


def test_click() -> None:
    msg = parsed("click")
    assert type(msg) is ClickEvent
    assert (msg.event, msg.event_key) == ("click", "V1001_TODAY_MUSIC")
    assert msg.dedup_key == f"{OPENID}:1700000000:click:V1001_TODAY_MUSIC"


def test_view() -> None:
    msg = parsed("view")
    assert type(msg) is ViewEvent
    assert (msg.event, msg.event_key, msg.menu_id) == ("view", "https://www.qq.com/", "208379533")


@pytest.mark.parametrize(
    ("name", "scan_type", "result"),
    [
        ("scancode_push", "qrcode", "https://example.com/q?id=1"),
        ("scancode_waitmsg", "barcode", "EAN_13,6901234567892"),
    ],
)
def test_scancode(name: str, scan_type: str, result: str) -> None:
    msg = parsed(name)
    assert type(msg) is ScanCodeEvent
    assert msg.event == name
    assert (msg.scan_type, msg.scan_result) == (scan_type, result)


def test_pictures_with_two_items() -> None:
    msg = parsed("pic_photo_or_album")
    assert type(msg) is PicSendEvent
    assert (msg.event, msg.event_key, msg.count) == ("pic_photo_or_album", "rselfmenu_1_1", 2)
    assert msg.pic_md5_sums == (
        "1b5f7c23b5bf75682a53e7b6d163e185",
        "5a75aaca956d97be686719218f275c6b",
    )


@pytest.mark.parametrize(
    ("name", "md5"),
    [
        ("pic_sysphoto", "1b5f7c23b5bf75682a53e7b6d163e185"),
        ("pic_weixin", "5a75aaca956d97be686719218f275c6b"),
    ],
)
def test_pictures_with_one_item(name: str, md5: str) -> None:
    msg = parsed(name)
    assert type(msg) is PicSendEvent
    assert msg.event == name
    assert (msg.count, msg.pic_md5_sums) == (1, (md5,))


def test_location_select() -> None:
    msg = parsed("location_select")
    assert type(msg) is LocationSelectEvent
    assert (msg.location_x, msg.location_y, msg.scale) == (23.0, 113.0, 15)
    assert (msg.label, msg.poiname) == (" 广州市海珠区客村艺苑路 106号", "")


def test_template_send_job_finish_uses_msg_id_with_capital_id() -> None:
    msg = parsed("template_finish")
    assert type(msg) is TemplateSendJobFinishEvent
    common(msg, "event", "200163836")
    assert (msg.event, msg.status) == ("templatesendjobfinish", "success")
    assert msg.dedup_key == f"{OPENID}:200163836"


def test_mass_send_job_finish() -> None:
    msg = parsed("mass_finish")
    assert type(msg) is MassSendJobFinishEvent
    assert msg.msg_id == "1000001625"
    assert msg.status == "send success"
    assert (msg.total_count, msg.filter_count, msg.sent_count, msg.error_count) == (100, 80, 75, 5)


def test_subscribe_msg_popup_event_lists_every_item() -> None:
    msg = parsed("subscribe_msg_popup")
    assert type(msg) is SubscribeMsgEvent
    assert msg.event == "subscribe_msg_popup_event"
    assert [dict(item) for item in msg.items] == [
        {
            "TemplateId": "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc",
            "SubscribeStatusString": "accept",
            "PopupScene": "2",
        },
        {
            "TemplateId": "9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI",
            "SubscribeStatusString": "reject",
            "PopupScene": "2",
        },
    ]


@pytest.mark.parametrize(
    ("name", "event_name", "item"),
    [
        (
            "subscribe_msg_change",
            "subscribe_msg_change_event",
            {
                "TemplateId": "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc",
                "SubscribeStatusString": "reject",
            },
        ),
        (
            "subscribe_msg_sent",
            "subscribe_msg_sent_event",
            {
                "TemplateId": "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc",
                "MsgID": "1700827132819554304",
                "ErrorCode": "0",
                "ErrorStatus": "success",
            },
        ),
    ],
)
def test_subscribe_msg_events_with_one_item(
    name: str, event_name: str, item: dict[str, str]
) -> None:
    msg = parsed(name)
    assert type(msg) is SubscribeMsgEvent
    assert msg.event == event_name
    assert msg.items == (item,)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("Subscribe", SubscribeEvent),
        ("UNSUBSCRIBE", UnsubscribeEvent),
        ("scan", ScanEvent),
        ("Location", LocationEvent),
        ("click", ClickEvent),
        ("View", ViewEvent),
        ("SCANCODE_PUSH", ScanCodeEvent),
        ("Pic_Weixin", PicSendEvent),
        ("LOCATION_SELECT", LocationSelectEvent),
        ("templateSendJobFinish", TemplateSendJobFinishEvent),
        ("massSendJobFinish", MassSendJobFinishEvent),
        ("Subscribe_Msg_Popup_Event", SubscribeMsgEvent),
    ],
)
def test_event_names_match_in_any_case(name: str, cls: type[Event]) -> None:
    msg = parse_message({"FromUserName": "o1", "MsgType": "EVENT", "Event": name})
    assert type(msg) is cls
    assert msg.msg_type == "event"
    assert msg.event == name.lower()


def test_unknown_msg_type_is_unknown_message() -> None:
    body = push("miniprogrampage", "<Title><![CDATA[小程序]]></Title><MsgId>42</MsgId>")
    msg = parse_message(parse_body(body.encode()))
    assert type(msg) is UnknownMessage
    assert (msg.msg_type, msg.msg_id) == ("miniprogrampage", "42")
    assert msg.raw["Title"] == "小程序"


def test_unknown_event_is_unknown_event() -> None:
    msg = parse_message(
        parse_body(event("kf_create_session", "<KfAccount>a@b</KfAccount>").encode())
    )
    assert type(msg) is UnknownEvent
    assert (msg.event, msg.event_key, msg.raw["KfAccount"]) == ("kf_create_session", "", "a@b")


def test_event_without_an_event_name_is_unknown_event() -> None:
    msg = parse_message({"FromUserName": "o1", "MsgType": "event"})
    assert type(msg) is UnknownEvent
    assert msg.event == ""


@pytest.mark.parametrize(
    "fields",
    [
        {"MsgType": "text", "Content": "hi", "MsgId": "42"},
        {"MsgType": "event", "Event": "TEMPLATESENDJOBFINISH", "MsgID": "42", "Status": "success"},
    ],
)
def test_dedup_key_is_the_sender_and_msg_id(fields: dict[str, Any]) -> None:
    # MsgIds collide across followers: another follower's message is another message
    alice = parse_message({"FromUserName": "o_alice", "CreateTime": "7", **fields})
    bob = parse_message({"FromUserName": "o_bob", "CreateTime": "7", **fields})
    retry = parse_message({"FromUserName": "o_alice", "CreateTime": "8", **fields})
    assert alice.dedup_key == "o_alice:42"
    assert bob.dedup_key == "o_bob:42"
    assert retry.dedup_key == alice.dedup_key


def test_dedup_key_without_msg_id_uses_sender_time_and_type() -> None:
    msg = parse_message({"FromUserName": "o1", "MsgType": "image", "CreateTime": "7"})
    assert msg.dedup_key == "o1:7:image"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"MsgType": "text", "Content": "hi"}, "missing FromUserName"),
        ({"FromUserName": "", "MsgType": "text"}, "missing FromUserName"),
        ({"FromUserName": {"nested": "x"}, "MsgType": "text"}, "missing FromUserName"),
        ({"FromUserName": "o1", "Content": "hi"}, "missing MsgType"),
        ({"FromUserName": "o1", "MsgType": "  "}, "missing MsgType"),
        ({"FromUserName": "o1", "MsgType": ["text", "text"]}, "missing MsgType"),
    ],
)
def test_missing_sender_or_type_is_a_message_error(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(MessageError) as caught:
        parse_message(fields)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


def test_to_user_may_be_missing() -> None:
    msg = parse_message({"FromUserName": "o1", "MsgType": "text", "Content": "hi"})
    assert type(msg) is TextMessage
    assert (msg.to_user, msg.content, msg.msg_id, msg.create_time) == ("", "hi", None, 0)


def test_junk_numbers_become_zero() -> None:
    msg = parse_message(
        {
            "FromUserName": "o1",
            "MsgType": "location",
            "CreateTime": "yesterday",
            "Location_X": "north",
            "Location_Y": "nan",
            "Scale": "4.7",
            "Label": {"nested": "x"},
        }
    )
    assert type(msg) is LocationMessage
    assert (msg.create_time, msg.location_x, msg.location_y, msg.scale, msg.label) == (
        0,
        0.0,
        0.0,
        4,
        "",
    )
    huge = parse_message(
        {
            "FromUserName": "o1",
            "MsgType": "event",
            "Event": "LOCATION",
            "CreateTime": "9" * 5000,
            "Latitude": "1e999",
            "Longitude": 10**400,
            "Precision": True,
        }
    )
    assert type(huge) is LocationEvent
    assert (huge.create_time, huge.latitude, huge.longitude, huge.precision) == (0, 0.0, 0.0, 0.0)


def test_json_push_numbers_are_accepted() -> None:
    body = json.dumps(
        {
            "ToUserName": ACCOUNT,
            "FromUserName": OPENID,
            "CreateTime": 1700000000,
            "MsgType": "location",
            "Location_X": 23.134521,
            "Location_Y": 113,
            "Scale": 20.0,
            "Label": "广州",
            "MsgId": 24318425512345685,
        },
        ensure_ascii=False,
    ).encode()
    msg = parse_message(parse_body(body))
    assert type(msg) is LocationMessage
    common(msg, "location", "24318425512345685")
    assert (msg.location_x, msg.location_y, msg.scale, msg.label) == (23.134521, 113.0, 20, "广州")


def test_json_push_lists_without_xml_wrappers() -> None:
    popup = parse_message(
        {
            "FromUserName": "o1",
            "MsgType": "event",
            "Event": "subscribe_msg_popup_event",
            "List": {"TemplateId": "t1", "SubscribeStatusString": "accept"},
        }
    )
    assert type(popup) is SubscribeMsgEvent
    assert popup.items == ({"TemplateId": "t1", "SubscribeStatusString": "accept"},)
    pics = parse_message(
        {
            "FromUserName": "o1",
            "MsgType": "event",
            "Event": "pic_weixin",
            "SendPicsInfo": {"Count": 2, "PicList": [{"PicMd5Sum": "a"}, {"PicMd5Sum": "b"}, 3]},
        }
    )
    assert type(pics) is PicSendEvent
    assert (pics.count, pics.pic_md5_sums) == (2, ("a", "b"))


def test_messages_are_frozen_and_slotted() -> None:
    msg = parsed("text")
    assert type(msg) is TextMessage
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.content = "changed"  # type: ignore[misc]
    assert not hasattr(msg, "__dict__")


def test_text_of() -> None:
    assert text_of(parsed("text")) == "你好"
    assert text_of(parsed("voice")) == "今天天气怎么样"
    assert text_of(parsed("image")) == ""
    assert text_of(parsed("click")) == ""


FIELD_NAMES = sorted(
    {
        "ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "MsgID", "Content",
        "MsgDataId", "Idx", "PicUrl", "MediaId", "Format", "Recognition", "ThumbMediaId",
        "Location_X", "Location_Y", "Scale", "Label", "Title", "Description", "Url", "Event",
        "EventKey", "Ticket", "Latitude", "Longitude", "Precision", "MenuId", "ScanCodeInfo",
        "SendPicsInfo", "SendLocationInfo", "Status", "TotalCount", "FilterCount", "SentCount",
        "ErrorCount", "List", "SubscribeMsgPopupEvent",
    }
)  # fmt: skip
TYPE_NAMES = ["text", "image", "voice", "video", "shortvideo", "location", "link", "event"]
EVENT_NAMES = [
    "subscribe", "unsubscribe", "SCAN", "LOCATION", "CLICK", "VIEW", "scancode_push",
    "pic_weixin", "location_select", "TEMPLATESENDJOBFINISH", "MASSSENDJOBFINISH",
    "subscribe_msg_popup_event", "subscribe_msg_sent_event",
]  # fmt: skip
keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=8)
strings = st.text(max_size=12) | st.sampled_from(TYPE_NAMES + EVENT_NAMES + ["qrscene_1", "1.5"])


def parses_or_refuses(fields: dict[str, Any]) -> None:
    """parse_message either builds a Message or raises MessageError, nothing else."""
    try:
        msg = parse_message(fields)
    except MessageError as error:
        assert error.reason in {"missing FromUserName", "missing MsgType"}
    else:
        assert isinstance(msg, Message)
        assert msg.from_user and msg.msg_type
        assert isinstance(msg.dedup_key, str)
        assert isinstance(text_of(msg), str)


def with_type_and_event(
    extra: st.SearchStrategy[dict[str, Any]],
) -> st.SearchStrategy[dict[str, Any]]:
    """Arbitrary fields, or the same over a valid sender, type and event so builders run too."""
    typed = st.fixed_dictionaries(
        {
            "FromUserName": st.text(min_size=1, max_size=8),
            "MsgType": st.sampled_from(TYPE_NAMES),
            "Event": st.sampled_from(EVENT_NAMES),
        }
    )
    return extra | st.builds(lambda base, more: {**more, **base}, typed, extra)


@given(with_type_and_event(st.dictionaries(keys, strings, max_size=12)))
def test_arbitrary_string_fields_never_raise_anything_but_message_error(
    fields: dict[str, str],
) -> None:
    parses_or_refuses(fields)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | strings,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=10,
)


@given(with_type_and_event(st.dictionaries(keys, json_values, max_size=12)))
def test_arbitrary_json_fields_never_raise_anything_but_message_error(
    fields: dict[str, Any],
) -> None:
    parses_or_refuses(fields)
