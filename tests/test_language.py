"""Script detection and language-name parsing for the greeting."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.followers.hanzi_tables import SIMPLIFIED_ONLY, TRADITIONAL_ONLY
from bot.followers.language import LANGUAGES, detect_language, normalize_language

SIMPLIFIED_SENTENCES = [
    "这个怎么样",
    "欢迎关注",
    "你们好",
    "我叫小明，很高兴认识你",
    "请问你们的营业时间是几点到几点？",
    "这个东西多少钱",
    "谢谢你的关注！",
    "我想买两张电影票",
    "今天天气怎么样",
    "请帮我查一下订单",
    "我的快递到哪里了",
    "你们有没有优惠活动",
    "怎么注册会员",
    "我忘记密码了",
    "能不能发个发票给我",
    "这个问题我已经说过很多次了",
    "明天下午三点见",
    "请问在哪里可以买到",
    "我对这个产品很满意",
    "为什么我收不到验证码",
    "退款什么时候到账",
    "你好，我是新来的用户",
    "请问怎么联系客服",
    "我要投诉",
    "这家店的服务太差了",
    "能推荐一本书吗",
    "孩子几岁可以学游泳",
    "周末有什么活动",
    "我在北京，能送货吗",
    "麻烦你了，谢谢",
    "好的，没问题",
    "叫我老王就行，谢谢",
]

TRADITIONAL_SENTENCES = [
    "這個怎麼樣",
    "歡迎關注",
    "你們好",
    "我叫小明，很高興認識你",
    "請問你們的營業時間是幾點到幾點？",
    "這個東西多少錢",
    "謝謝你的關注！",
    "我想買兩張電影票",
    "今天天氣怎麼樣",
    "請幫我查一下訂單",
    "我的快遞到哪裡了",
    "你們有沒有優惠活動",
    "怎麼註冊會員",
    "我忘記密碼了",
    "能不能開張發票給我",
    "這個問題我已經說過很多次了",
    "明天下午三點見",
    "請問在哪裡可以買到",
    "我對這個產品很滿意",
    "為什麼我收不到驗證碼",
    "退款什麼時候到帳",
    "你好，我是新來的用戶",
    "請問怎麼聯繫客服",
    "我要投訴",
    "這家店的服務太差了",
    "能推薦一本書嗎",
    "小孩幾歲可以學游泳",
    "週末有什麼活動",
    "我在台北，能送貨嗎",
    "麻煩你了，謝謝",
    "好的，沒問題",
    "叫我阿明就好，謝謝",
    "我係香港人，想問下點樣報名",  # Hong Kong spelling and Cantonese words
    "佢話今日唔得閒",
]

ENGLISH_SENTENCES = [
    "hello there",
    "Call me Sam!",
    "Hi, what time do you open?",
    "How much is this?",
    "I'd like to book a table for 2 at 7pm.",
    "thanks :)",
    "OK",
    "Café au lait, s'il vous plaît",  # accented Latin is still Latin script
    "ＨＥＬＬＯ from a full-width keyboard",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello there", "en"),
        ("Call me Sam!", "en"),
        ("你好", None),
        ("我是人", None),
        ("叫我老王就行", None),  # every character here is common to both scripts
        ("这个怎么样", "zh_CN"),
        ("這個怎麼樣", "zh_TW"),
        ("歡迎關注", "zh_TW"),
        ("欢迎关注", "zh_CN"),
        ("我想看看这個", None),
        ("123 !!", None),
        ("", None),
        ("hi 你们好", "zh_CN"),
        ("hi 你們好", "zh_TW"),
        ("ok 你好", None),  # Han decides even beside Latin, and 你好 is common to both
        ("😀👍🎉", None),
        ("😀 这个", "zh_CN"),
        ("   \n\t", None),
        ("，。！？", None),
        ("Привет", None),  # letters, but not Latin
        ("안녕하세요", None),
        ("hello Привет", None),
    ],
)
def test_detect_language_examples(text: str, expected: str | None) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize("text", SIMPLIFIED_SENTENCES)
def test_detect_simplified_sentences(text: str) -> None:
    assert detect_language(text) == "zh_CN"


@pytest.mark.parametrize("text", TRADITIONAL_SENTENCES)
def test_detect_traditional_sentences(text: str) -> None:
    assert detect_language(text) == "zh_TW"


@pytest.mark.parametrize("text", ENGLISH_SENTENCES)
def test_detect_english_sentences(text: str) -> None:
    assert detect_language(text) == "en"


def test_sentences_convert_into_each_other() -> None:
    # The two lists say the same things, so a sentence and its counterpart must disagree
    for simplified, traditional in zip(SIMPLIFIED_SENTENCES, TRADITIONAL_SENTENCES, strict=False):
        assert detect_language(simplified + traditional) is None


@pytest.mark.parametrize(
    "shared",
    ["干", "乾", "后", "面", "里", "台", "只", "系", "云", "么", "了", "着", "著", "叫", "你"],
)
def test_characters_used_in_both_scripts_are_no_evidence(shared: str) -> None:
    assert shared not in SIMPLIFIED_ONLY
    assert shared not in TRADITIONAL_ONLY
    assert detect_language(shared) is None


@pytest.mark.parametrize(
    ("simplified", "traditional"),
    [
        ("这", "這"),
        ("个", "個"),
        ("们", "們"),
        ("欢", "歡"),
        ("关", "關"),
        ("语", "語"),
        ("简", "簡"),
        ("体", "體"),
        ("发", "發"),
        ("发", "髮"),
        ("干", "幹"),
        ("后", "後"),
        ("面", "麵"),
        ("里", "裡"),
        ("里", "裏"),
        ("台", "臺"),
        ("只", "隻"),
        ("系", "係"),
        ("系", "繫"),
        ("云", "雲"),
        ("么", "麼"),
        ("为", "為"),
        ("为", "爲"),
    ],
)
def test_pair_sides(simplified: str, traditional: str) -> None:
    assert traditional in TRADITIONAL_ONLY
    assert traditional not in SIMPLIFIED_ONLY
    if simplified not in "干后面里台只系云么":
        assert simplified in SIMPLIFIED_ONLY


def test_tables_are_disjoint_and_han_only() -> None:
    assert SIMPLIFIED_ONLY.isdisjoint(TRADITIONAL_ONLY)
    for char in SIMPLIFIED_ONLY | TRADITIONAL_ONLY:
        assert unicodedata.name(char).startswith("CJK UNIFIED IDEOGRAPH-"), char


def test_tables_cover_the_frequent_pairs() -> None:
    assert len(SIMPLIFIED_ONLY) >= 800
    assert len(TRADITIONAL_ONLY) >= 800


def test_every_language_is_reachable() -> None:
    assert {detect_language("hello"), detect_language("这个"), detect_language("這個")} == set(
        LANGUAGES
    )


@given(st.text())
def test_detect_language_never_raises(text: str) -> None:
    assert detect_language(text) in (*LANGUAGES, None)


_TABLE_CHARS = sorted(SIMPLIFIED_ONLY | TRADITIONAL_ONLY)


@given(st.text(alphabet=st.sampled_from([*_TABLE_CHARS, "你", "好", "a", " ", "!", "😀"])))
def test_detect_language_agrees_with_the_tables(text: str) -> None:
    has_simplified = any(char in SIMPLIFIED_ONLY for char in text)
    has_traditional = any(char in TRADITIONAL_ONLY for char in text)
    result = detect_language(text)
    if has_simplified and has_traditional:
        assert result is None
    elif has_simplified:
        assert result == "zh_CN"
    elif has_traditional:
        assert result == "zh_TW"
    else:
        assert result in ("en", None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("english", "en"),
        ("English", "en"),
        (" ENGLISH ", "en"),
        ("English.", "en"),
        ("ＥＮ", "en"),
        ("en" + " " * 100, "en"),
        ("英文", "en"),
        ("英语", "en"),
        ("英語", "en"),
        ("zh_CN", "zh_CN"),
        ("zh-cn", "zh_CN"),
        ("ZH-CN", "zh_CN"),
        ("zh-hans", "zh_CN"),
        ("zh-Hans", "zh_CN"),
        ("cn", "zh_CN"),
        ("简体", "zh_CN"),
        ("简体中文", "zh_CN"),
        ("中文", "zh_CN"),
        ("普通话", "zh_CN"),
        ("simplified chinese", "zh_CN"),
        ("Simplified  Chinese", "zh_CN"),
        ("chinese", "zh_CN"),
        ("zh_TW", "zh_TW"),
        ("zh-tw", "zh_TW"),
        ("zh-hant", "zh_TW"),
        ("tw", "zh_TW"),
        ("hk", "zh_TW"),
        ("HK", "zh_TW"),
        ("繁體", "zh_TW"),
        ("繁体", "zh_TW"),
        ("繁體中文", "zh_TW"),
        ("繁体中文", "zh_TW"),
        ("「繁體中文」", "zh_TW"),
        ("正體", "zh_TW"),
        ("traditional chinese", "zh_TW"),
        ("Traditional Chinese!", "zh_TW"),
    ],
)
def test_normalize_language_table(value: str, expected: str) -> None:
    assert normalize_language(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "french",
        "日本語",
        "zh_XX",
        "e n g l i s h x",
        "english please",
        "I speak English",
        "中文" * 40,
        "x" * 1000,
        "😀",
    ],
)
def test_normalize_language_junk(value: str) -> None:
    assert normalize_language(value) is None


@given(st.text())
def test_normalize_language_never_raises(value: str) -> None:
    assert normalize_language(value) in (*LANGUAGES, None)
