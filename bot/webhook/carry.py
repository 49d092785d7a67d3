"""A follower's message carries the answers waiting for them (`bot.webhook.pending`).

The oldest waiting answer leads the passive reply; a text answer is joined by the texts that
follow it (waiting ones, then the message's own answer) while they fit one reply. What is
left goes through the customer-service API when the account has it, else waits again, and the
reply tells the follower, in their language, that more is waiting.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.routing.dispatch import Outcome
from bot.webhook.delivery import LateDelivery
from bot.webhook.pending import PendingAnswers
from bot.wechat.replies import Reply, TextReply, customer_service_payload, reply_from_payload

MORE_WAITING = {
    "zh_CN": "（还有 {n} 条回复，发送任意消息即可收到）",
    "zh_TW": "（還有 {n} 則回覆，傳送任意訊息即可收到）",
    "en": "({n} more waiting: send any message to get it.)",
}
# A passive text reply longer than this is cut by the platform (2048 bytes): keep them apart.
_JOINED_LIMIT = 600
_SEPARATOR = "\n\n"


async def carry_waiting(
    pending: PendingAnswers,
    delivery: LateDelivery,
    openid: str,
    record: Mapping[str, str] | None,
    outcome: Outcome,
    language: str,
    cs_available: bool,
) -> Outcome:
    """`outcome` with the answers waiting for `openid` (in `record`; None: not read) put
    first; without the API, a list's other replies wait behind it."""
    waiting = await pending.take(openid, record) if record is not None else []
    queue: list[tuple[Reply, str]] = []
    for answer in waiting:
        reply = reply_from_payload(answer.payload)
        if reply is not None:
            queue.append((reply, answer.handler))
            pending.given(answer, "passive")
    own = outcome.handler or "-"
    if not queue and (cs_available or not outcome.extra):
        return outcome  # nothing waited; a list's other replies go through the API
    if outcome.reply is not None:
        queue.append((outcome.reply, own))
    queue.extend((reply, own) for reply in outcome.extra)
    if not queue:
        return outcome
    first, handler = queue.pop(0)
    while isinstance(first, TextReply) and queue and isinstance(queue[0][0], TextReply):
        joined = first.content + _SEPARATOR + queue[0][0].content
        if len(joined) > _JOINED_LIMIT:
            break
        first = TextReply(joined)
        queue.pop(0)
    rest = [(p, name) for reply, name in queue if (p := customer_service_payload(reply, openid))]
    if cs_available:
        if rest:  # one delivery: in order, within the quota
            delivery.submit_payloads(openid, [p for p, _ in rest], handler=rest[0][1])
    else:
        for payload, name in rest:
            await pending.keep(openid, payload, name, "an earlier answer went first")
        if rest and isinstance(first, TextReply):
            note = MORE_WAITING.get(language, MORE_WAITING["en"]).format(n=len(rest))
            first = TextReply(first.content + _SEPARATOR + note)
    return Outcome(first, outcome.handler or handler, outcome.failed)
