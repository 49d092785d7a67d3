"""Passive replies (platform notes §4): typed values, rendered to XML by string building.

Every text value goes into CDATA; a ``]]>`` inside is split across two sections, a CR is written
as ``&#13;`` between sections (parsers turn a raw CR into LF even inside CDATA), and characters
XML 1.0 forbids (controls, lone surrogates, U+FFFE/U+FFFF) are dropped, so the answer is always
well-formed: a malformed one shows the follower "this account cannot serve you now".
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from bot.wechat.media_formats import check_media_file
from bot.wechat.xml import parse_body

__all__ = [
    "ARTICLE_LIMIT",
    "ARTICLE_LIMIT_FOR_USER_MESSAGES",
    "Article",
    "ImageReply",
    "MusicReply",
    "NewsReply",
    "Reply",
    "TextReply",
    "TransferCustomerServiceReply",
    "VideoReply",
    "VoiceReply",
    "customer_service_payload",
    "max_articles_for",
    "parse_reply",
    "render_reply",
    "reply_from_payload",
]

ARTICLE_LIMIT_FOR_USER_MESSAGES = 1  # news in answer to text/image/voice/video/location/link
ARTICLE_LIMIT = 8  # news in answer to anything else (events)
_USER_MESSAGE_TYPES = frozenset(
    {"text", "image", "voice", "video", "shortvideo", "location", "link"}
)
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class TextReply:
    """A text answer."""

    content: str


def _one_source(reply: Any, kind: str) -> None:
    """A media reply names its medium by ``media_id`` or by a local ``file``, checked now
    (when a module builds its replies at import, a bad file stops it loading). Both are set
    once the file is uploaded."""
    if not reply.media_id and reply.file is None:
        raise ValueError(f"a {type(reply).__name__} needs a media_id or a file")
    if reply.file is not None and not reply.media_id:
        check_media_file(reply.file, kind)  # MediaFileError: too large, wrong format, missing


@dataclass(frozen=True, slots=True)
class ImageReply:
    """An image, by the ``media_id`` of uploaded media or a local ``file`` (PNG/JPEG/GIF,
    2 MB) the bot uploads on first use and reuses while the platform keeps it."""

    media_id: str = ""
    file: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        _one_source(self, "image")


@dataclass(frozen=True, slots=True)
class VoiceReply:
    """A voice clip, by ``media_id`` or a local ``file`` (AMR/MP3, 2 MB)."""

    media_id: str = ""
    file: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        _one_source(self, "voice")


@dataclass(frozen=True, slots=True)
class VideoReply:
    """A video, by ``media_id`` or a local ``file`` (MP4, 10 MB), with an optional title and
    description."""

    media_id: str = ""
    title: str = ""
    description: str = ""
    file: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        _one_source(self, "video")


@dataclass(frozen=True, slots=True)
class MusicReply:
    """A music card; ``thumb_media_id`` is the cover image's media id, or ``thumb_file`` a
    local JPEG (64 KB) uploaded on first use."""

    title: str = ""
    description: str = ""
    music_url: str = ""
    hq_music_url: str = ""
    thumb_media_id: str = ""
    thumb_file: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        if self.thumb_file is not None and not self.thumb_media_id:
            check_media_file(self.thumb_file, "thumb")


@dataclass(frozen=True, slots=True)
class Article:
    """One item of a ``NewsReply``."""

    title: str
    description: str = ""
    pic_url: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class NewsReply:
    """Link cards; rendering keeps only as many as the platform allows for the message answered."""

    articles: tuple[Article, ...]

    def __post_init__(self) -> None:
        if not self.articles:
            raise ValueError("a NewsReply needs at least one Article")
        if type(self.articles) is not tuple:  # a list would make the frozen value mutable
            object.__setattr__(self, "articles", tuple(self.articles))


@dataclass(frozen=True, slots=True)
class TransferCustomerServiceReply:
    """Hand the conversation to human agents, to ``kf_account`` if given (user messages only)."""

    kf_account: str | None = None


Reply: TypeAlias = (
    TextReply
    | ImageReply
    | VoiceReply
    | VideoReply
    | MusicReply
    | NewsReply
    | TransferCustomerServiceReply
)


def _cdata(value: str) -> str:
    """``value`` as CDATA that any XML 1.0 parser reads back unchanged."""
    if _FORBIDDEN.search(value) is not None:
        value = _FORBIDDEN.sub("", value)
    if "]]>" in value:
        value = value.replace("]]>", "]]]]><![CDATA[>")
    if "\r" in value:
        value = value.replace("\r", "]]>&#13;<![CDATA[")
    return f"<![CDATA[{value}]]>"


def _text_body(reply: TextReply, _max: int) -> str:
    return f"<MsgType><![CDATA[text]]></MsgType><Content>{_cdata(reply.content)}</Content>"


def _image_body(reply: ImageReply, _max: int) -> str:
    return (
        "<MsgType><![CDATA[image]]></MsgType>"
        f"<Image><MediaId>{_cdata(reply.media_id)}</MediaId></Image>"
    )


def _voice_body(reply: VoiceReply, _max: int) -> str:
    return (
        "<MsgType><![CDATA[voice]]></MsgType>"
        f"<Voice><MediaId>{_cdata(reply.media_id)}</MediaId></Voice>"
    )


def _video_body(reply: VideoReply, _max: int) -> str:
    return (
        "<MsgType><![CDATA[video]]></MsgType>"
        f"<Video><MediaId>{_cdata(reply.media_id)}</MediaId>"
        f"<Title>{_cdata(reply.title)}</Title>"
        f"<Description>{_cdata(reply.description)}</Description></Video>"
    )


def _music_body(reply: MusicReply, _max: int) -> str:
    return (
        "<MsgType><![CDATA[music]]></MsgType>"
        f"<Music><Title>{_cdata(reply.title)}</Title>"
        f"<Description>{_cdata(reply.description)}</Description>"
        f"<MusicUrl>{_cdata(reply.music_url)}</MusicUrl>"
        f"<HQMusicUrl>{_cdata(reply.hq_music_url)}</HQMusicUrl>"
        f"<ThumbMediaId>{_cdata(reply.thumb_media_id)}</ThumbMediaId></Music>"
    )


def _news_body(reply: NewsReply, max_articles: int) -> str:
    articles = reply.articles[: max(1, max_articles)]
    items = "".join(
        f"<item><Title>{_cdata(a.title)}</Title>"
        f"<Description>{_cdata(a.description)}</Description>"
        f"<PicUrl>{_cdata(a.pic_url)}</PicUrl><Url>{_cdata(a.url)}</Url></item>"
        for a in articles
    )
    return (
        "<MsgType><![CDATA[news]]></MsgType>"
        f"<ArticleCount>{len(articles)}</ArticleCount><Articles>{items}</Articles>"
    )


def _transfer_body(reply: TransferCustomerServiceReply, _max: int) -> str:
    body = "<MsgType><![CDATA[transfer_customer_service]]></MsgType>"
    if reply.kf_account:
        body += f"<TransInfo><KfAccount>{_cdata(reply.kf_account)}</KfAccount></TransInfo>"
    return body


# Type-specific part of each reply, after the common header: (reply, max_articles) -> XML
_BODIES: dict[type[Any], Callable[[Any, int], str]] = {
    TextReply: _text_body,
    ImageReply: _image_body,
    VoiceReply: _voice_body,
    VideoReply: _video_body,
    MusicReply: _music_body,
    NewsReply: _news_body,
    TransferCustomerServiceReply: _transfer_body,
}


def render_reply(
    reply: Reply,
    *,
    to_user: str,
    from_user: str,
    create_time: int,
    max_articles: int = ARTICLE_LIMIT,
) -> str:
    """The passive-reply XML; ``to_user`` is the follower's openid, ``from_user`` the account.

    News is cut to ``max_articles`` (see ``max_articles_for``), never below one article.
    """
    body = _BODIES.get(type(reply))
    if body is None:
        raise TypeError(f"not a Reply: {type(reply).__name__}")
    _require_media_ids(reply)
    return (
        f"<xml><ToUserName>{_cdata(to_user)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(create_time)}</CreateTime>"
        f"{body(reply, max_articles)}</xml>"
    )


def _require_media_ids(reply: Reply) -> None:
    """A reply naming a local file is rendered once its upload gave it a media id."""
    if isinstance(reply, ImageReply | VoiceReply | VideoReply) and not reply.media_id:
        raise ValueError(f"{type(reply).__name__}: {reply.file} has no media_id yet (upload it)")
    if isinstance(reply, MusicReply) and reply.thumb_file is not None and not reply.thumb_media_id:
        raise ValueError(f"MusicReply: {reply.thumb_file} has no media_id yet (upload it)")


def max_articles_for(msg_type: str) -> int:
    """How many news articles a passive reply to a ``msg_type`` message may carry."""
    if msg_type in _USER_MESSAGE_TYPES:
        return ARTICLE_LIMIT_FOR_USER_MESSAGES
    return ARTICLE_LIMIT


def _news_payload(reply: NewsReply) -> tuple[str, dict[str, Any]]:
    # the customer-service API refuses more than one article (errcode 45008)
    first = reply.articles[0]
    article = {
        "title": first.title,
        "description": first.description,
        "url": first.url,
        "picurl": first.pic_url,
    }
    return "news", {"articles": [article]}


# msgtype and its object for message/custom/send, per reply type
_PAYLOADS: dict[type[Any], Callable[[Any], tuple[str, dict[str, Any]]]] = {
    TextReply: lambda r: ("text", {"content": r.content}),
    ImageReply: lambda r: ("image", {"media_id": r.media_id}),
    VoiceReply: lambda r: ("voice", {"media_id": r.media_id}),
    VideoReply: lambda r: (
        "video",
        {"media_id": r.media_id, "title": r.title, "description": r.description},
    ),
    MusicReply: lambda r: (
        "music",
        {
            "title": r.title,
            "description": r.description,
            "musicurl": r.music_url,
            "hqmusicurl": r.hq_music_url,
            "thumb_media_id": r.thumb_media_id,
        },
    ),
    NewsReply: _news_payload,
}


def customer_service_payload(reply: Reply, openid: str) -> dict[str, Any] | None:
    """The ``message/custom/send`` JSON carrying ``reply`` late; ``None`` if it cannot be carried.

    ``TransferCustomerServiceReply`` only means something as a passive answer; news keeps its
    first article, the most the customer-service API accepts.
    """
    payload = _PAYLOADS.get(type(reply))
    if payload is None:
        return None
    _require_media_ids(reply)
    kind, content = payload(reply)
    return {"touser": openid, "msgtype": kind, kind: content}


def reply_from_payload(payload: Any) -> Reply | None:
    """The reply a ``customer_service_payload`` carries (an answer kept as JSON and given
    later as a passive reply); ``None`` when ``payload`` is not one."""
    if not isinstance(payload, dict):
        return None
    kind = payload.get("msgtype")
    content = payload.get(kind) if isinstance(kind, str) else None
    if not isinstance(content, dict):
        return None
    text = {k: v for k, v in content.items() if isinstance(v, str)}
    try:
        if kind == "text":
            return TextReply(text["content"])
        if kind in ("image", "voice"):
            return (ImageReply if kind == "image" else VoiceReply)(text["media_id"])
        if kind == "video":
            return VideoReply(text["media_id"], text.get("title", ""), text.get("description", ""))
        if kind == "music":
            return MusicReply(
                text.get("title", ""),
                text.get("description", ""),
                text.get("musicurl", ""),
                text.get("hqmusicurl", ""),
                text.get("thumb_media_id", ""),
            )
        if kind == "news":
            articles = content.get("articles")
            items = articles if isinstance(articles, list) else []
            return NewsReply(
                tuple(
                    Article(
                        str(a.get("title", "")),
                        str(a.get("description", "")),
                        str(a.get("picurl", "")),
                        str(a.get("url", "")),
                    )
                    for a in items
                    if isinstance(a, dict)
                )
            )
    except (KeyError, ValueError):
        return None
    return None


def parse_reply(xml: str) -> dict[str, Any]:
    """Read reply XML back into fields (for tests and tools); ``Articles`` is always a list.

    Raises ``bot.wechat.xml.BodyError`` when ``xml`` is not a well-formed ``<xml>`` document.
    """
    # surrogatepass: a lone surrogate becomes bytes that parse_body reports as an encoding error
    fields = parse_body(xml.encode("utf-8", "surrogatepass"))
    articles = fields.get("Articles")
    if articles is not None:
        items = articles.get("item", []) if isinstance(articles, dict) else []
        fields["Articles"] = items if isinstance(items, list) else [items]
    return fields
