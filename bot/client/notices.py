"""Template messages and subscription notices (platform notes §8).

Values are checked before the call: every field of a template message is at most 20
characters since 2023-05-04, typed keys have their own limits (`thing` 20, `character_string`
32, `phrase` 5, …), and no value may hold a line break (the platform would strip it). The
results come back as events: `TemplateSendJobFinishEvent` and `SubscribeMsgEvent`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.client.caller import APICaller
from bot.client.errors import LimitError
from bot.client.limits import check_bytes, check_chars

TEMPLATE_VALUE_LIMIT = 20  # characters, any field of a template message (since 2023-05-04)
# typed keys (the key without its number: thing3 -> thing) and their length in characters
VALUE_LIMITS: dict[str, int] = {
    "thing": 20,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "phrase": 5,
    "phone_number": 17,
    "car_number": 8,
    "name": 20,
}
MAX_CLIENT_MSG_ID_BYTES = 64
_KEY_TYPE = re.compile(r"^([a-z_]+?)\d*$")


@dataclass(frozen=True)
class MiniProgram:
    """The mini program a notice opens (wins over `url`)."""

    appid: str
    pagepath: str = ""

    def to_json(self) -> dict[str, str]:
        """The platform's JSON."""
        return {"appid": self.appid, "pagepath": self.pagepath}


def check_values(data: Mapping[str, str], general_limit: int | None) -> None:
    """Raise LimitError for the first value that breaks its key's limit (or `general_limit`)."""
    if not data:
        raise LimitError("data", "at least one field is needed")
    for key, value in data.items():
        field = f"data.{key}.value"
        if not isinstance(value, str):
            raise LimitError(field, "must be a string")
        if "\n" in value or "\r" in value:
            raise LimitError(field, "must not contain line breaks (the platform strips them)")
        found = _KEY_TYPE.match(key)
        typed = VALUE_LIMITS.get(found.group(1)) if found else None
        limits = [n for n in (typed, general_limit) if n is not None]
        check_chars(field, value, min(limits) if limits else 200)


class TemplateAPI:
    """message/template/send (verified service accounts)."""

    def __init__(self, api: APICaller) -> None:
        """Calls go through `api`."""
        self._api = api

    async def send(
        self,
        touser: str,
        template_id: str,
        data: Mapping[str, str],
        *,
        url: str | None = None,
        miniprogram: MiniProgram | None = None,
        client_msg_id: str | None = None,
    ) -> int:
        """Send a template message; its `msgid` (the `TEMPLATESENDJOBFINISH` event's MsgID).

        `client_msg_id` makes a resend within 10 minutes a no-op on the platform.
        """
        body = _body(touser, template_id, data, TEMPLATE_VALUE_LIMIT, miniprogram)
        if url:
            body["url"] = url
        if client_msg_id is not None:
            check_bytes("client_msg_id", client_msg_id, MAX_CLIENT_MSG_ID_BYTES)
            body["client_msg_id"] = client_msg_id
        answer = await self._api.call("POST", "/cgi-bin/message/template/send", json_body=body)
        msgid = answer.get("msgid")
        return msgid if isinstance(msgid, int) else 0


class NoticeAPI:
    """message/subscribe/bizsend: subscription notices a follower accepted."""

    def __init__(self, api: APICaller) -> None:
        """Calls go through `api`."""
        self._api = api

    async def send(
        self,
        touser: str,
        template_id: str,
        data: Mapping[str, str],
        *,
        page: str | None = None,
        miniprogram: MiniProgram | None = None,
    ) -> None:
        """Send a subscription notice (43101 when the follower did not accept it)."""
        body = _body(touser, template_id, data, None, miniprogram)
        if page:
            body["page"] = page
        await self._api.call("POST", "/cgi-bin/message/subscribe/bizsend", json_body=body)


def _body(
    touser: str,
    template_id: str,
    data: Mapping[str, str],
    general_limit: int | None,
    miniprogram: MiniProgram | None,
) -> dict[str, object]:
    """The checked fields both kinds of send share."""
    check_chars("touser", touser, 128)
    check_chars("template_id", template_id, 128)
    check_values(data, general_limit)
    body: dict[str, object] = {
        "touser": touser,
        "template_id": template_id,
        "data": {key: {"value": value} for key, value in data.items()},
    }
    if miniprogram is not None:
        body["miniprogram"] = miniprogram.to_json()
    return body
