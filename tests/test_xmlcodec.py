"""parse_body: XML and JSON pushes into fields, and every way a body can be refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bot.wechat.xml
from bot.wechat.xml import MAX_DEPTH, BodyError, parse_body

REASONS = {"empty", "dtd", "malformed", "encoding", "root", "too deep", "not an object"}

TEXT_XML = """<xml>
  <ToUserName><![CDATA[gh_3d5e2b1a9c7f]]></ToUserName>
  <FromUserName><![CDATA[oUpF8uMuAJO_M2pxb1Q9zNjWeS6o]]></FromUserName>
  <CreateTime>1700000000</CreateTime>
  <MsgType><![CDATA[text]]></MsgType>
  <Content><![CDATA[你好 😀 hello]]></Content>
  <MsgId>24318425512345678</MsgId>
</xml>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>&lol9;</Content></xml>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>&xxe;</Content></xml>"""

PARAMETER_ENTITY = b"""<!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x"> %remote;]>
<xml><Content>x</Content></xml>"""

EXTERNAL_DTD = b"""<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><Content>x</Content></xml>"""


def reason_of(body: bytes) -> str:
    """The BodyError reason for ``body``; fails the test if it parses."""
    with pytest.raises(BodyError) as caught:
        parse_body(body)
    return caught.value.reason


def test_text_message_fields_are_flat_strings() -> None:
    assert parse_body(TEXT_XML.encode()) == {
        "ToUserName": "gh_3d5e2b1a9c7f",
        "FromUserName": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": "你好 😀 hello",
        "MsgId": "24318425512345678",
    }


def test_plain_text_entities_and_split_cdata_are_joined() -> None:
    body = (
        b"<xml><A>a &lt;b&gt; &amp; &#x4F60;&#22909;</A>"
        b"<B><![CDATA[x]]]]><![CDATA[>y]]></B><C>pre<![CDATA[<mid>]]>post</C>"
        b"<D></D><E/><F>  spaced  </F></xml>"
    )
    assert parse_body(body) == {
        "A": "a <b> & 你好",
        "B": "x]]>y",
        "C": "pre<mid>post",
        "D": "",
        "E": "",
        "F": "  spaced  ",
    }


def test_nested_elements_become_dicts_and_repeats_become_lists() -> None:
    body = b"""<xml><Event><![CDATA[pic_photo_or_album]]></Event>
    <ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult>1</ScanResult></ScanCodeInfo>
    <SendPicsInfo><Count>2</Count><PicList>
      <item><PicMd5Sum><![CDATA[aaa]]></PicMd5Sum></item>
      <item><PicMd5Sum><![CDATA[bbb]]></PicMd5Sum></item>
    </PicList></SendPicsInfo>
    <Single><PicList><item><PicMd5Sum>ccc</PicMd5Sum></item></PicList></Single>
    <Tag>1</Tag><Tag>1</Tag><Tag></Tag><Tag></Tag>
    </xml>"""
    assert parse_body(body) == {
        "Event": "pic_photo_or_album",
        "ScanCodeInfo": {"ScanType": "qrcode", "ScanResult": "1"},
        "SendPicsInfo": {
            "Count": "2",
            "PicList": {"item": [{"PicMd5Sum": "aaa"}, {"PicMd5Sum": "bbb"}]},
        },
        "Single": {"PicList": {"item": {"PicMd5Sum": "ccc"}}},
        # equal one-character and empty values are still kept apart (they share one object)
        "Tag": ["1", "1", "", ""],
    }


def test_attributes_comments_and_processing_instructions_are_ignored() -> None:
    body = b'<?xml version="1.0"?><xml a="1"><!-- c --><A b="2">v<?pi x?>w</A></xml>'
    assert parse_body(body) == {"A": "vw"}


def spy_on_dtd_refusals(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Record every call of the DTD refusal handler while still refusing."""
    calls: list[tuple[Any, ...]] = []
    refuse = bot.wechat.xml._refuse_dtd

    def spy(*args: Any) -> Any:
        calls.append(args)
        refuse(*args)

    monkeypatch.setattr(bot.wechat.xml, "_refuse_dtd", spy)
    return calls


@pytest.mark.parametrize(
    ("body", "doctype"),
    [
        (BILLION_LAUGHS, "lolz"),
        (EXTERNAL_ENTITY, "xml"),
        (PARAMETER_ENTITY, "xml"),
        (EXTERNAL_DTD, "xml"),
    ],
)
def test_any_dtd_is_refused_before_anything_is_declared(
    monkeypatch: pytest.MonkeyPatch, body: bytes, doctype: str
) -> None:
    calls = spy_on_dtd_refusals(monkeypatch)
    with pytest.raises(BodyError) as caught:
        parse_body(body)
    assert caught.value.reason == "dtd"
    assert str(caught.value) == "dtd"  # the answer never quotes the body
    # one call, from the DOCTYPE itself: no entity declaration was ever reached
    assert len(calls) == 1
    assert calls[0][0] == doctype


def test_entity_reference_without_a_dtd_is_malformed() -> None:
    assert reason_of(b"<xml><Content>&xxe;</Content></xml>") == "malformed"


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><A>1</A>",
        b"<xml><A>1</B></xml>",
        b"<xml><A>1</A></xml><xml/>",
        b"not xml at all",
        b"<xml><A x=1/></xml>",
        b"[1, 2]",
        b"<xml><A>\xef\xbf\xbe</A></xml>",  # U+FFFE is valid UTF-8 but not an XML character
    ],
)
def test_malformed_xml_is_refused(body: bytes) -> None:
    assert reason_of(body) == "malformed"


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><Content>\xff\xfe</Content></xml>",
        b"<xml><Content>\xc0\xaf</Content></xml>",  # overlong "/"
        b"<xml><Content>\xed\xa0\x80</Content></xml>",  # an encoded surrogate
        b"<xml><Content>\xe4\xbd</Content></xml>",  # truncated sequence
        # the declaration is ignored: pushes are UTF-8, so latin-1 bytes are invalid
        b'<?xml version="1.0" encoding="ISO-8859-1"?><xml><Content>caf\xe9</Content></xml>',
        b'{"Content": "caf\xe9"}',
        b'{"Content": "\xed\xa0\x80"}',
    ],
)
def test_invalid_utf8_is_an_encoding_error(body: bytes) -> None:
    assert reason_of(body) == "encoding"


def test_declared_encoding_cannot_reinterpret_utf8() -> None:
    body = '<?xml version="1.0" encoding="ISO-8859-1"?><xml><A>café</A></xml>'.encode()
    assert parse_body(body) == {"A": "café"}


def test_control_characters_inside_content_are_removed() -> None:
    body = (
        b"<xml><MsgType>text</MsgType><Content>a\x1db\x01c\x0b\x0c\x1f\x00d\te\nf</Content></xml>"
    )
    assert parse_body(body) == {"MsgType": "text", "Content": "abcd\te\nf"}


def test_control_characters_inside_json_are_removed_too() -> None:
    assert parse_body(b'{"Content": "a\x1db", "Escaped": "c\\u001dd"}') == {
        "Content": "ab",
        "Escaped": "c\x1dd",  # an escaped control character is valid JSON and kept
    }


@pytest.mark.parametrize(
    "body",
    [
        rb'{"FromUserName": "o_\ud800", "MsgType": "text"}',  # a lone high surrogate
        rb'{"FromUserName": "o_\uDFFF", "MsgType": "text"}',  # a lone low one
        rb'{"Content": "\ude00\ud83d", "MsgType": "text"}',  # a pair in the wrong order
        rb'{"o_\ud800": "key", "MsgType": "text"}',  # in a key
        rb'{"List": [{"TemplateId": "t\udbff"}], "MsgType": "event"}',  # nested
    ],
)
def test_json_escapes_making_a_lone_surrogate_are_an_encoding_error(body: bytes) -> None:
    # json.loads accepts them, but no UTF-8 can carry them: a store or a reply would fail later
    assert reason_of(body) == "encoding"


def test_json_escapes_of_a_surrogate_pair_or_a_backslash_are_kept() -> None:
    body = rb'{"Content": "\ud83d\ude00 \\ud800", "MsgType": "text"}'
    assert parse_body(body) == {"Content": "😀 \\ud800", "MsgType": "text"}


def test_json_push_keeps_field_names_and_numbers() -> None:
    body = (
        b' \n\t{"ToUserName": "gh_1", "FromUserName": "o1", "CreateTime": 1700000000,'
        b' "MsgType": "event", "Event": "subscribe_msg_popup_event",'
        b' "List": [{"TemplateId": "t1", "SubscribeStatusString": "accept", "PopupScene": "2"}]}'
    )
    assert parse_body(body) == {
        "ToUserName": "gh_1",
        "FromUserName": "o1",
        "CreateTime": 1700000000,
        "MsgType": "event",
        "Event": "subscribe_msg_popup_event",
        "List": [{"TemplateId": "t1", "SubscribeStatusString": "accept", "PopupScene": "2"}],
    }


def test_byte_order_mark_is_skipped() -> None:
    assert parse_body(b'\xef\xbb\xbf{"A": "1"}') == {"A": "1"}
    assert parse_body(b"\xef\xbb\xbf<xml><A>1</A></xml>") == {"A": "1"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b" \r\n\t", "empty"),
        (b"\x1d\x01", "empty"),
        (b"<xml></xml>", "empty"),
        (b"<xml/>", "empty"),
        (b"<xml>only text</xml>", "empty"),
        (b"{}", "empty"),
        (b'{"A": 1', "malformed"),
        (b"{" * 100_000, "malformed"),
        (b"<root><A>1</A></root>", "root"),
        (b"<XML><A>1</A></XML>", "root"),
    ],
)
def test_unusable_bodies_are_refused(body: bytes, reason: str) -> None:
    assert reason_of(body) == reason


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    ok = b"<xml>" + b"<a>" * (MAX_DEPTH - 1) + b"x" + b"</a>" * (MAX_DEPTH - 1) + b"</xml>"
    value: Any = parse_body(ok)
    for _ in range(MAX_DEPTH - 2):
        value = value["a"]
    assert value == {"a": "x"}
    deep = b"<xml>" + b"<a>" * MAX_DEPTH + b"</a>" * MAX_DEPTH + b"</xml>"
    assert reason_of(deep) == "too deep"


@pytest.mark.parametrize("closed", [True, False])
def test_deep_nesting_is_refused_as_the_element_opens(
    monkeypatch: pytest.MonkeyPatch, closed: bool
) -> None:
    # a body as large as max_body_bytes allows, nested all the way down
    levels = 65536 // 7
    body = b"<xml>" + b"<a>" * levels + (b"</a>" * levels + b"</xml>" if closed else b"")
    stored: list[str] = []
    store = bot.wechat.xml._field_value

    def spy(path: Any, key: str, value: Any) -> Any:
        stored.append(key)
        return store(path, key, value)

    monkeypatch.setattr(bot.wechat.xml, "_field_value", spy)
    assert reason_of(body) == "too deep"  # unclosed, it would be malformed only at the end
    assert stored == []  # refused before xmltodict stored a single value


def test_body_error_is_a_value_error_with_a_reason() -> None:
    error = BodyError("malformed")
    assert isinstance(error, ValueError)
    assert error.reason == "malformed"
    assert str(error) == "malformed"


@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_body_error(body: bytes) -> None:
    try:
        fields = parse_body(body)
    except BodyError as error:
        assert error.reason in REASONS
    else:
        assert isinstance(fields, dict) and fields


@given(st.binary(max_size=200), st.sampled_from([b"<xml><A>", b"<xml><A><![CDATA[", b'{"A": "']))
def test_arbitrary_bytes_inside_a_valid_frame_parse_or_raise_body_error(
    inner: bytes, prefix: bytes
) -> None:
    suffix = {b"<xml><A>": b"</A></xml>", b"<xml><A><![CDATA[": b"]]></A></xml>"}.get(prefix, b'"}')
    try:
        fields = parse_body(prefix + inner + suffix)
    except BodyError as error:
        assert error.reason in REASONS
    else:
        assert isinstance(fields, dict) and fields


# -- the flat fast path agrees with the general parse (xmltodict) ----------------------------------

_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True)
_VALUES = st.text(alphabet=st.characters(codec="utf-8", blacklist_characters="\r\x00"), max_size=40)


def _flat_document(draw: st.DrawFn) -> bytes:
    names = draw(st.lists(_NAMES, min_size=1, max_size=8, unique=True))
    parts = [draw(st.sampled_from(["", " ", "\n  "])) + "<xml>"]
    for name in names:
        value = draw(_VALUES)
        as_cdata = draw(st.booleans())
        if as_cdata:
            inner = "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"
        else:
            inner = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts.append(draw(st.sampled_from(["", "\n", " \t"])) + f"<{name}>{inner}</{name}>")
    parts.append("\n</xml>\n")
    return "".join(parts).encode()


flat_documents = st.composite(_flat_document)


@settings(max_examples=300, deadline=None)
@given(body=flat_documents())
def test_flat_fast_path_agrees_with_the_general_parse(body: bytes) -> None:
    from bot.wechat.xml import _parse_flat, _parse_xml

    cleaned = body.translate(None, bytes(b for b in range(0x20) if b not in b"\t\n\r"))
    start = len(cleaned) - len(cleaned.lstrip(b" \t\r\n"))
    fast = _parse_flat(cleaned, start)
    try:
        slow: dict[str, object] | None = _parse_xml(cleaned)
    except BodyError:
        slow = None
    if fast is not None:
        assert fast == slow


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200).map(lambda b: b"<xml><A>" + b + b"</A></xml>"))
def test_flat_fast_path_never_accepts_what_the_general_parse_refuses(body: bytes) -> None:
    from bot.wechat.xml import _parse_flat, _parse_xml

    cleaned = body.translate(None, bytes(b for b in range(0x20) if b not in b"\t\n\r"))
    fast = _parse_flat(cleaned, 0)
    if fast is None:
        return
    assert _parse_xml(cleaned) == fast


def test_typical_text_push_takes_the_fast_path() -> None:
    from bot.wechat.xml import _parse_flat

    body = (
        b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_1]]>"
        b"</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        b"<Content><![CDATA[\xe4\xbd\xa0\xe5\xa5\xbd]]></Content><MsgId>42</MsgId></xml>"
    )
    assert _parse_flat(body, 0) == {
        "ToUserName": "gh_1",
        "FromUserName": "o_1",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": "你好",
        "MsgId": "42",
    }
    # nesting, entities and repeated names go to the general parse
    assert _parse_flat(b"<xml><A><B>1</B></A></xml>", 0) is None
    assert _parse_flat(b"<xml><A>&amp;</A></xml>", 0) is None
    assert _parse_flat(b"<xml><A>1</A><A>2</A></xml>", 0) is None


_SPACE = st.sampled_from(["", " ", "\n", "\t\n  "])


@st.composite
def _envelopes(draw: st.DrawFn) -> bytes:
    to_user = draw(_VALUES).replace("]]>", "")
    encrypt = draw(st.from_regex(r"[A-Za-z0-9+/=]{0,200}", fullmatch=True))
    return (
        f"<xml>{draw(_SPACE)}<ToUserName><![CDATA[{to_user}]]></ToUserName>{draw(_SPACE)}"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>{draw(_SPACE)}</xml>{draw(_SPACE)}"
    ).encode()


def _assert_fast_agrees_with_the_general_parse(body: bytes) -> None:
    from bot.wechat.xml import _parse_flat, _parse_xml

    # parse_body removes control bytes before either parser sees the body
    body = body.translate(None, bytes(b for b in range(0x20) if b not in b"\t\n\r"))
    fast = _parse_flat(body, 0)
    try:
        slow: dict[str, object] | None = _parse_xml(body)
    except BodyError:
        slow = None
    if fast is not None:
        assert fast == slow


@settings(max_examples=300, deadline=None)
@given(body=_envelopes())
def test_the_safe_mode_envelope_parses_as_the_general_parse_does(body: bytes) -> None:
    _assert_fast_agrees_with_the_general_parse(body)


def test_a_typical_envelope_takes_the_fast_path() -> None:
    from bot.wechat.xml import _ENVELOPE, _parse_flat

    body = (
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[q+/Zw==]]></Encrypt></xml>"
    )
    assert _ENVELOPE.fullmatch(body) is not None
    assert _parse_flat(body.encode(), 0) == {"ToUserName": "gh_1", "Encrypt": "q+/Zw=="}


@st.composite
def _text_pushes(draw: st.DrawFn) -> bytes:
    parts = ["<xml>"]
    for name in ("ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId"):
        value = draw(_VALUES)
        if draw(st.booleans()):
            inner = "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"
        else:
            inner = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts.append(f"{draw(_SPACE)}<{name}>{inner}</{name}>")
    parts.append(f"{draw(_SPACE)}</xml>{draw(_SPACE)}")
    return "".join(parts).encode()


@settings(max_examples=300, deadline=None)
@given(body=_text_pushes())
def test_a_text_push_parses_as_the_general_parse_does(body: bytes) -> None:
    _assert_fast_agrees_with_the_general_parse(body)


def test_a_typical_text_push_takes_the_text_pass() -> None:
    from bot.wechat.xml import _TEXT_PUSH, _parse_flat

    body = (
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName>\n<FromUserName><![CDATA[o_1]]>"
        "</FromUserName>\n<CreateTime>1700000000</CreateTime>\n<MsgType><![CDATA[text]]>"
        "</MsgType>\n<Content><![CDATA[a]b]]></Content>\n<MsgId>42</MsgId>\n</xml>"
    )
    assert _TEXT_PUSH.fullmatch(body) is not None
    assert _parse_flat(body.encode(), 0) == {
        "ToUserName": "gh_1",
        "FromUserName": "o_1",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": "a]b",
        "MsgId": "42",
    }
