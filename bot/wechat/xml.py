"""Request bodies → flat field dicts, safely: WeChat's ``<xml>`` pushes or their JSON twin (§4, §5).

XML children become keys; leaf text becomes ``str`` (CDATA unwrapped); elements with children
become nested dicts; a name repeated under one parent becomes a list in document order.
Nothing from a DTD is ever expanded: any DOCTYPE or entity declaration is refused outright.

The flat shapes the platform sends (a text push, the safe-mode envelope, flat events) are
recognised directly; anything else goes to the general parse, xmltodict over an expat that
refuses any DOCTYPE and any element nested deeper than ``MAX_DEPTH`` as soon as it opens.

Control characters (U+0000-U+001F except TAB, LF, CR) are *removed* before parsing. The platform
does send some (e.g. ``\\x1d`` inside Content) but XML 1.0 forbids them even as character
references, so no parser accepts them. Dropping them keeps every parsed value XML-safe to echo
back in a reply, and cannot collide with real text the way a placeholder character could.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn
from xml.parsers import expat

import xmltodict

__all__ = ["MAX_DEPTH", "BodyError", "parse_body"]

MAX_DEPTH = 32  # WeChat nests three levels at most; anything deeper is hostile
# bytes below 0x20 never occur inside a multi-byte UTF-8 sequence, so deleting them is safe
_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in b"\t\n\r")
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


class BodyError(ValueError):
    """The body is not a usable push; ``reason`` is short and safe to answer with (HTTP 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_body(body: bytes) -> dict[str, Any]:
    """Parse a push body (XML, or JSON when it starts with ``{``) into its fields.

    Raises ``BodyError`` with reason ``"empty"``, ``"dtd"``, ``"malformed"``, ``"encoding"``,
    ``"root"`` (XML root is not ``<xml>``), ``"too deep"`` or ``"not an object"`` (JSON);
    ``"encoding"`` also for a JSON ``\\u`` escape that leaves a lone surrogate.
    """
    # translate returns the same object when nothing is deleted: no copy on clean bodies
    body = body.translate(None, _CONTROL_BYTES)
    start = 3 if body.startswith(_BOM) else 0
    end = len(body)
    while start < end and body[start] in _WHITESPACE:
        start += 1
    if start == end:
        raise BodyError("empty")
    if body[start] == 0x7B:  # "{"
        fields = _parse_json(body, start)
    else:
        fields = _parse_flat(body, start) or _parse_xml(body)
    if not fields:
        raise BodyError("empty")
    return fields


def _parse_json(body: bytes, start: int) -> dict[str, Any]:
    """Decode a JSON push; strict UTF-8 (json's own detection would let encoded surrogates in)."""
    try:
        value = json.loads(body[start:].decode("utf-8"))
    except UnicodeDecodeError:
        raise BodyError("encoding") from None
    except (ValueError, RecursionError):
        raise BodyError("malformed") from None
    if not isinstance(value, dict):
        raise BodyError("not an object")
    # strict UTF-8 holds no surrogate, so only a \u escape can make one
    if b"\\u" in body and _holds_lone_surrogate(value):
        raise BodyError("encoding")
    return value


_SURROGATE = re.compile(r"[\ud800-\udfff]")  # json joins a valid pair into one character


def _holds_lone_surrogate(value: object) -> bool:
    """Whether a key or string anywhere in a decoded JSON value holds a lone surrogate.

    json accepts them, but no UTF-8 can carry them: a store, a log line or a reply would fail.
    """
    pending = [value]  # a loop, not recursion: the value nests as deep as json.loads allows
    while pending:
        item = pending.pop()
        if type(item) is str:
            if _SURROGATE.search(item) is not None:
                return True
        elif type(item) is dict:
            pending.extend(item)
            pending.extend(item.values())
        elif type(item) is list:
            pending.extend(item)
    return False


# A flat push (every child of <xml> a text or single-CDATA leaf) is all the platform sends for
# text messages and most events; one regular expression matches it in C, where the general
# parse calls back into Python for every element and piece of text (bench/README.md has the
# numbers). Anything else — a declaration, a DTD, an entity or character reference, nesting,
# attributes, CR, a repeated name — is left to the general parse, so both give the same
# fields for every document the fast one accepts.
_LEAF = (
    r"<([A-Za-z_][A-Za-z0-9_]*)>"
    # unrolled loops: runs of ordinary characters, and a "]" only where it does not start "]]>"
    r"(?:<!\[CDATA\[([^\]]*(?:\](?!\]>)[^\]]*)*)\]\]>|([^<&\]]*(?:\](?!\]>)[^<&\]]*)*))"
    r"</\1>"
)
_FLAT_DOCUMENT = re.compile(r"<xml>(?:[ \t\n]*" + _LEAF + r")*[ \t\n]*</xml>[ \t\n]*")
_FLAT_LEAF = re.compile(_LEAF)
# A text message as the platform sends it: the same leaves with their names fixed in order,
# so one pass with no back-reference and no second scan gives every field.
_VALUE = _LEAF[_LEAF.index(">") + 1 : _LEAF.rindex("</")]
_TEXT_PUSH = re.compile(
    "<xml>"
    + "".join(
        rf"[ \t\n]*<{name}>{_VALUE}</{name}>"
        for name in ("ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId")
    )
    + r"[ \t\n]*</xml>[ \t\n]*"
)
# The safe-mode envelope as the platform sends it: a narrower case of the flat document with
# simpler character classes, so it is matched in one quick pass (same fields as the general one)
_ENVELOPE = re.compile(
    r"<xml>[ \t\n]*<ToUserName><!\[CDATA\[([^\]\ufffe\uffff]*)\]\]></ToUserName>"
    r"[ \t\n]*<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]*)\]\]></Encrypt>[ \t\n]*</xml>[ \t\n]*"
)


def _parse_flat(body: bytes, start: int) -> dict[str, Any] | None:
    """The fields of a flat `<xml>` push, or None when the general parse must decide."""
    if b"\r" in body:
        return None
    try:
        text = body[start:].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\ufffe" in text or "\uffff" in text:
        return None
    envelope = _ENVELOPE.fullmatch(text)
    if envelope is not None:
        return {"ToUserName": envelope[1], "Encrypt": envelope[2]}
    push = _TEXT_PUSH.fullmatch(text)
    if push is not None:  # each leaf: (CDATA, or None) then (text, or None)
        a, b, c, d, e, f, g, h, i, j, k, m = push.groups()
        return {
            "ToUserName": a if a is not None else b,
            "FromUserName": c if c is not None else d,
            "CreateTime": e if e is not None else f,
            "MsgType": g if g is not None else h,
            "Content": i if i is not None else j,
            "MsgId": k if k is not None else m,
        }
    # one C-level pass proves the shape; the leaves then lie end to end after "<xml>"
    if _FLAT_DOCUMENT.fullmatch(text) is None:
        return None
    leaves = _FLAT_LEAF.findall(text, 5)
    fields = {name: cdata or chars for name, cdata, chars in leaves}
    if len(fields) != len(leaves):
        return None  # a repeated name: the general parse makes it a list
    return fields


def _refuse_dtd(*_args: Any) -> NoReturn:
    """Expat handler for every DTD construct: stop before anything is declared or expanded."""
    raise BodyError("dtd")


class _GuardedExpat:
    """The ``expat`` given to xmltodict: parsers that refuse any DOCTYPE (so nothing is ever
    declared) and any element nested past ``MAX_DEPTH``."""

    @staticmethod
    def ParserCreate(encoding: str | None, namespace_separator: str | None) -> _DepthBoundParser:
        parser = expat.ParserCreate(encoding, namespace_separator)
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        # the DOCTYPE comes before any declaration, so refusing it stops all a DTD could do;
        # the entity handlers only back that up (xmltodict puts its own refusal over one)
        parser.StartDoctypeDeclHandler = _refuse_dtd
        parser.EntityDeclHandler = _refuse_dtd
        parser.UnparsedEntityDeclHandler = _refuse_dtd
        parser.ExternalEntityRefHandler = _refuse_dtd
        return _DepthBoundParser(parser)


class _DepthBoundParser:
    """An expat parser as xmltodict drives it, refusing an element as it opens past MAX_DEPTH.

    xmltodict has no hook at an element's start: without this a deeply nested body would be
    built whole before anything could refuse it (bench/README.md has the cost).
    """

    __slots__ = ("_parser",)
    _parser: expat.XMLParserType

    def __init__(self, parser: expat.XMLParserType) -> None:
        object.__setattr__(self, "_parser", parser)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._parser, name, value)  # xmltodict's settings and handlers

    def Parse(self, data: bytes, isfinal: bool = False) -> int:
        parser = self._parser
        start: Any = parser.StartElementHandler  # xmltodict's, set before it parses
        end: Any = parser.EndElementHandler
        depth = 0

        def opened(name: str, attrs: Any) -> None:
            nonlocal depth
            depth += 1
            if depth > MAX_DEPTH:
                raise BodyError("too deep")
            start(name, attrs)

        def closed(name: str) -> None:
            nonlocal depth
            depth -= 1
            end(name)

        parser.StartElementHandler = opened
        parser.EndElementHandler = closed
        return parser.Parse(data, isfinal)


def _field_value(_path: object, key: str, value: Any) -> tuple[str, Any] | None:
    """xmltodict's hook for each value it stores: empty leaves as ``""``, no container text."""
    if key == "#text":
        return None  # the text between a container's children belongs to no field
    return key, "" if value is None else value


def _parse_xml(body: bytes) -> dict[str, Any]:
    """The general parse (nesting, entities, attributes, repeats): xmltodict over guarded expat."""
    try:
        document = xmltodict.parse(
            body,
            encoding="UTF-8",  # overrides any declaration in the document: pushes are UTF-8
            expat=_GuardedExpat,
            xml_attribs=False,
            strip_whitespace=False,  # values keep their spaces, as the flat recognisers do
            postprocessor=_field_value,  # type: ignore[arg-type]  # None drops a key: stubs omit it
        )
    except expat.ExpatError:
        raise BodyError(_xml_error_reason(body)) from None
    if "xml" not in document:  # well-formed XML has exactly one root element
        raise BodyError("root")
    root = document["xml"]
    # "<xml>text</xml>" has no fields: parse_body reports it as empty
    return root if type(root) is dict else {}


def _xml_error_reason(body: bytes) -> str:
    """Tell bad bytes from bad markup; only runs on the error path, so it may afford a decode."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "encoding"
    return "malformed"
