"""Typed incoming messages and events (platform notes §5), built from ``parse_body`` fields.

``parse_message`` never raises for odd values: junk numbers become 0, unknown types and events
become ``UnknownMessage`` / ``UnknownEvent``. Only a push without a sender or a type is refused.
Field values may be ``str`` (XML) or numbers (JSON pushes); both are accepted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ClickEvent",
    "Event",
    "ImageMessage",
    "LinkMessage",
    "LocationEvent",
    "LocationMessage",
    "LocationSelectEvent",
    "MassSendJobFinishEvent",
    "Message",
    "MessageError",
    "PicSendEvent",
    "ScanCodeEvent",
    "ScanEvent",
    "SubscribeEvent",
    "SubscribeMsgEvent",
    "SubscribeNotice",
    "TemplateSendJobFinishEvent",
    "TextMessage",
    "UnknownEvent",
    "UnknownMessage",
    "UnsubscribeEvent",
    "VideoMessage",
    "ViewEvent",
    "VoiceMessage",
    "parse_message",
    "text_of",
]

_QRSCENE = "qrscene_"
_EMPTY: Mapping[str, Any] = {}


class MessageError(ValueError):
    """The fields are not a usable message; ``reason`` is safe to answer with (HTTP 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """Base of every incoming message and event; ``raw`` keeps all parsed fields."""

    to_user: str
    from_user: str
    create_time: int
    msg_type: str
    msg_id: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def openid(self) -> str:
        """The follower's openid (``FromUserName``)."""
        return self.from_user

    @property
    def dedup_key(self) -> str:
        """Identity across the platform's retries: sender and ``MsgId``, else sender, time, type.

        A MsgId is not unique across followers, so the sender is part of every key.
        """
        if self.msg_id:
            return f"{self.from_user}:{self.msg_id}"
        return f"{self.from_user}:{self.create_time}:{self.msg_type}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TextMessage(Message):
    """``text``; ``msg_data_id`` and ``idx`` are set when sent from an article."""

    content: str
    msg_data_id: str | None
    idx: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageMessage(Message):
    """``image``."""

    pic_url: str
    media_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceMessage(Message):
    """``voice``; ``recognition`` is the platform's transcript, often empty."""

    media_id: str
    format: str
    recognition: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoMessage(Message):
    """``video`` or ``shortvideo`` (see ``msg_type``)."""

    media_id: str
    thumb_media_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationMessage(Message):
    """``location``: a place the follower sent."""

    location_x: float
    location_y: float
    scale: int
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkMessage(Message):
    """``link``."""

    title: str
    description: str
    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownMessage(Message):
    """Any ``MsgType`` this module does not know; read ``raw``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Event(Message):
    """``MsgType=event``; ``event`` is lower-cased, ``event_key`` is ``""`` when absent."""

    event: str
    event_key: str

    @property
    def dedup_key(self) -> str:
        """Sender and ``MsgID`` when the event has one, else sender, time, event and key."""
        if self.msg_id:
            return f"{self.from_user}:{self.msg_id}"
        return f"{self.from_user}:{self.create_time}:{self.event}:{self.event_key}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeEvent(Event):
    """A follow; ``scene`` is set when it came through a parameter QR code."""

    scene: str | None
    ticket: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeEvent(Event):
    """An unfollow: the follower's data should be deleted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanEvent(Event):
    """``SCAN``: a follower scanned a parameter QR code; ``event_key`` is the scene."""

    ticket: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationEvent(Event):
    """``LOCATION``: the periodic location report."""

    latitude: float
    longitude: float
    precision: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ClickEvent(Event):
    """``CLICK`` on a menu button; ``event_key`` is the button's key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewEvent(Event):
    """``VIEW``: a menu link was opened; ``event_key`` is the URL."""

    menu_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanCodeEvent(Event):
    """``scancode_push`` / ``scancode_waitmsg``."""

    scan_type: str
    scan_result: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PicSendEvent(Event):
    """``pic_sysphoto`` / ``pic_photo_or_album`` / ``pic_weixin``."""

    count: int
    pic_md5_sums: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationSelectEvent(Event):
    """``location_select`` from a menu."""

    location_x: float
    location_y: float
    scale: int
    label: str
    poiname: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateSendJobFinishEvent(Event):
    """``TEMPLATESENDJOBFINISH``; ``msg_id`` is the job's ``MsgID`` (what the template send
    returned), ``status`` ``success``, ``failed:user block`` or ``failed: system failed``."""

    status: str

    @property
    def delivered(self) -> bool:
        """The template message reached the follower."""
        return self.status == "success"


@dataclass(frozen=True, slots=True, kw_only=True)
class MassSendJobFinishEvent(Event):
    """``MASSSENDJOBFINISH``; ``msg_id`` is the job's ``MsgID``."""

    status: str
    total_count: int
    filter_count: int
    sent_count: int
    error_count: int


@dataclass(frozen=True, slots=True)
class SubscribeNotice:
    """One item of a subscription-notice event: which template, and what became of it.

    ``status`` is ``SubscribeStatusString`` (``accept`` / ``reject``) for the pop-up and change
    events, ``ErrorStatus`` (``success`` / ``failed:…``) for the sent event.
    """

    template_id: str
    status: str
    popup_scene: str = ""
    msg_id: str = ""
    error_code: int = 0

    @property
    def accepted(self) -> bool:
        """The follower allowed this notice (pop-up or change event)."""
        return self.status == "accept"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeMsgEvent(Event):
    """``subscribe_msg_popup_event`` / ``_change_`` / ``_sent_``: one mapping per ``List`` item
    in ``items``, typed in ``notices``."""

    items: tuple[Mapping[str, Any], ...]

    @property
    def notices(self) -> tuple[SubscribeNotice, ...]:
        """The items as typed values."""
        return tuple(
            SubscribeNotice(
                template_id=_text(i.get("TemplateId")),
                status=_text(i.get("SubscribeStatusString") or i.get("ErrorStatus")),
                popup_scene=_text(i.get("PopupScene")),
                msg_id=_text(i.get("MsgID")),
                error_code=_int(i.get("ErrorCode")),
            )
            for i in self.items
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """Any event this module does not know; read ``raw``."""


def _text(value: Any) -> str:
    """A field as text: str as is, numbers formatted, anything else (nested, absent) ``""``."""
    if type(value) is str:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _optional(value: Any) -> str | None:
    """A field as text, ``None`` when absent or empty."""
    return _text(value) or None


def _int(value: Any) -> int:
    """A field as int; junk becomes 0 and "4.5" becomes 4."""
    if type(value) is int:
        return value
    if type(value) is str:
        try:
            return int(value)
        except ValueError:  # "4.5", "x", or more digits than int() accepts
            pass
    return int(_float(value))  # _float is always finite, so int() cannot fail


def _float(value: Any) -> float:
    """A field as a finite float; junk becomes 0.0."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return 0.0
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: float() of an int too large
        return 0.0
    return number if math.isfinite(number) else 0.0


def _mapping(value: Any) -> Mapping[str, Any]:
    """A nested element as a mapping; ``{}`` when absent or not nested."""
    return value if isinstance(value, Mapping) else _EMPTY


def _items(value: Any) -> tuple[Mapping[str, Any], ...]:
    """A repeated element as a tuple of mappings: XML gives one dict or a list, JSON a list."""
    if isinstance(value, Mapping):
        return (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, Mapping))
    return ()


# Each builder takes (fields, common keyword arguments) and returns the typed message.
_Common = dict[str, Any]
_Builder = Callable[[Mapping[str, Any], _Common], Message]


def _image(f: Mapping[str, Any], c: _Common) -> Message:
    return ImageMessage(pic_url=_text(f.get("PicUrl")), media_id=_text(f.get("MediaId")), **c)


def _voice(f: Mapping[str, Any], c: _Common) -> Message:
    return VoiceMessage(
        media_id=_text(f.get("MediaId")),
        format=_text(f.get("Format")),
        recognition=_text(f.get("Recognition")),
        **c,
    )


def _video(f: Mapping[str, Any], c: _Common) -> Message:
    return VideoMessage(
        media_id=_text(f.get("MediaId")), thumb_media_id=_text(f.get("ThumbMediaId")), **c
    )


def _location(f: Mapping[str, Any], c: _Common) -> Message:
    return LocationMessage(
        location_x=_float(f.get("Location_X")),
        location_y=_float(f.get("Location_Y")),
        scale=_int(f.get("Scale")),
        label=_text(f.get("Label")),
        **c,
    )


def _link(f: Mapping[str, Any], c: _Common) -> Message:
    return LinkMessage(
        title=_text(f.get("Title")),
        description=_text(f.get("Description")),
        url=_text(f.get("Url")),
        **c,
    )


def _subscribe(f: Mapping[str, Any], c: _Common) -> Message:
    key: str = c["event_key"]
    scene = key[len(_QRSCENE) :] if key.startswith(_QRSCENE) else None
    return SubscribeEvent(scene=scene or None, ticket=_optional(f.get("Ticket")), **c)


def _unsubscribe(_f: Mapping[str, Any], c: _Common) -> Message:
    return UnsubscribeEvent(**c)


def _scan(f: Mapping[str, Any], c: _Common) -> Message:
    return ScanEvent(ticket=_optional(f.get("Ticket")), **c)


def _location_event(f: Mapping[str, Any], c: _Common) -> Message:
    return LocationEvent(
        latitude=_float(f.get("Latitude")),
        longitude=_float(f.get("Longitude")),
        precision=_float(f.get("Precision")),
        **c,
    )


def _click(_f: Mapping[str, Any], c: _Common) -> Message:
    return ClickEvent(**c)


def _view(f: Mapping[str, Any], c: _Common) -> Message:
    return ViewEvent(menu_id=_optional(f.get("MenuId")), **c)


def _scancode(f: Mapping[str, Any], c: _Common) -> Message:
    info = _mapping(f.get("ScanCodeInfo"))
    return ScanCodeEvent(
        scan_type=_text(info.get("ScanType")), scan_result=_text(info.get("ScanResult")), **c
    )


def _pics(f: Mapping[str, Any], c: _Common) -> Message:
    info = _mapping(f.get("SendPicsInfo"))
    pics = info.get("PicList")
    # XML nests <PicList><item>…</item></PicList>; a JSON push may give the list directly
    items = _items(pics["item"] if isinstance(pics, Mapping) and "item" in pics else pics)
    return PicSendEvent(
        count=_int(info.get("Count")),
        pic_md5_sums=tuple(_text(item.get("PicMd5Sum")) for item in items),
        **c,
    )


def _location_select(f: Mapping[str, Any], c: _Common) -> Message:
    info = _mapping(f.get("SendLocationInfo"))
    return LocationSelectEvent(
        location_x=_float(info.get("Location_X")),
        location_y=_float(info.get("Location_Y")),
        scale=_int(info.get("Scale")),
        label=_text(info.get("Label")),
        poiname=_text(info.get("Poiname")),
        **c,
    )


def _template_finish(f: Mapping[str, Any], c: _Common) -> Message:
    return TemplateSendJobFinishEvent(status=_text(f.get("Status")), **c)


def _mass_finish(f: Mapping[str, Any], c: _Common) -> Message:
    return MassSendJobFinishEvent(
        status=_text(f.get("Status")),
        total_count=_int(f.get("TotalCount")),
        filter_count=_int(f.get("FilterCount")),
        sent_count=_int(f.get("SentCount")),
        error_count=_int(f.get("ErrorCount")),
        **c,
    )


def _subscribe_msg(container: str) -> _Builder:
    """Builder for a subscription-notice event whose ``List`` sits in ``container`` (XML)."""

    def build(f: Mapping[str, Any], c: _Common) -> Message:
        # XML wraps the List items in the container element; JSON pushes put List at the top
        holder = f[container] if isinstance(f.get(container), Mapping) else f
        return SubscribeMsgEvent(items=_items(holder.get("List")), **c)

    return build


def _unknown_message(_f: Mapping[str, Any], c: _Common) -> Message:
    return UnknownMessage(**c)


def _unknown_event(_f: Mapping[str, Any], c: _Common) -> Message:
    return UnknownEvent(**c)


_MESSAGE_BUILDERS: dict[str, _Builder] = {
    "image": _image,
    "voice": _voice,
    "video": _video,
    "shortvideo": _video,
    "location": _location,
    "link": _link,
}

# Keys are lower-cased: the platform mixes "subscribe" with "SCAN" and "CLICK"
_EVENT_BUILDERS: dict[str, _Builder] = {
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "scan": _scan,
    "location": _location_event,
    "click": _click,
    "view": _view,
    "scancode_push": _scancode,
    "scancode_waitmsg": _scancode,
    "pic_sysphoto": _pics,
    "pic_photo_or_album": _pics,
    "pic_weixin": _pics,
    "location_select": _location_select,
    "templatesendjobfinish": _template_finish,
    "masssendjobfinish": _mass_finish,
    "subscribe_msg_popup_event": _subscribe_msg("SubscribeMsgPopupEvent"),
    "subscribe_msg_change_event": _subscribe_msg("SubscribeMsgChangeEvent"),
    "subscribe_msg_sent_event": _subscribe_msg("SubscribeMsgSentEvent"),
}


def parse_message(fields: Mapping[str, Any]) -> Message:
    """Build the typed message for a push's fields; ``MessageError`` without sender or type."""
    from_user = _text(fields.get("FromUserName"))
    if not from_user:
        raise MessageError("missing FromUserName")
    msg_type = _text(fields.get("MsgType")).strip().lower()
    if not msg_type:
        raise MessageError("missing MsgType")
    to_user = _text(fields.get("ToUserName"))
    create_time = _int(fields.get("CreateTime"))
    # template and mass-send job events spell it MsgID
    msg_id = _optional(fields.get("MsgId")) or _optional(fields.get("MsgID"))
    if msg_type == "text":  # the common case: no dispatch, no keyword dict
        return TextMessage(
            to_user=to_user,
            from_user=from_user,
            create_time=create_time,
            msg_type=msg_type,
            msg_id=msg_id,
            raw=fields,
            content=_text(fields.get("Content")),
            msg_data_id=_optional(fields.get("MsgDataId")),
            idx=_optional(fields.get("Idx")),
        )
    common: _Common = {
        "to_user": to_user,
        "from_user": from_user,
        "create_time": create_time,
        "msg_type": msg_type,
        "msg_id": msg_id,
        "raw": fields,
    }
    if msg_type != "event":
        return _MESSAGE_BUILDERS.get(msg_type, _unknown_message)(fields, common)
    event = _text(fields.get("Event")).strip().lower()
    common["event"] = event
    common["event_key"] = _text(fields.get("EventKey"))
    return _EVENT_BUILDERS.get(event, _unknown_event)(fields, common)


def text_of(msg: Message) -> str:
    """What the follower said: ``Content`` of a text, ``Recognition`` of a voice, else ``""``."""
    if isinstance(msg, TextMessage):
        return msg.content
    if isinstance(msg, VoiceMessage):
        return msg.recognition
    return ""
