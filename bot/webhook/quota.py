"""The customer-service quotas (platform notes §7), counted before a send rather than learnt
from `45047`.

After a follower's message: 5 messages within 48 h. After a follow, a QR-code scan or a menu
click of type `click`, `scancode_push` or `scancode_waitmsg`: 3 messages within 1 minute. The
latest scene sets the allowance, unless a live one allows more. Passive replies are not
customer-service messages and do not count. Kept per instance in a bounded table: with several
instances a follower's allowance is counted where their messages land, and the platform's
`45047` (the answer then waits for the next message) is the backstop.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from bot.wechat.messages import Event, Message

MESSAGE_ALLOWANCE = (5, 48 * 3600.0)
EVENT_ALLOWANCE = (3, 60.0)
_EVENTS = frozenset({"subscribe", "scan", "click", "scancode_push", "scancode_waitmsg"})


class CustomerServiceQuota:
    """Per follower: how many customer-service messages may still go, and until when."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._size = size
        self._clock = clock
        self._left: OrderedDict[str, list[float]] = OrderedDict()  # openid -> [count, until]

    def granted(self, msg: Message) -> None:
        """Note the allowance `msg` opens (none for events of other kinds)."""
        if isinstance(msg, Event):
            if msg.event not in _EVENTS:
                return
            count, seconds = EVENT_ALLOWANCE
        else:
            count, seconds = MESSAGE_ALLOWANCE
        now = self._clock()
        left = self._left.get(msg.from_user)
        if left is not None and left[1] > now and left[0] >= count and left[1] >= now + seconds:
            return
        self._left[msg.from_user] = [float(count), now + seconds]
        self._left.move_to_end(msg.from_user)
        if len(self._left) > self._size:
            self._left.popitem(last=False)

    def take(self, openid: str) -> bool:
        """Count one message to `openid`; False when the allowance is spent or over (unknown
        followers are let through: the platform decides)."""
        left = self._left.get(openid)
        if left is None:
            return True
        if left[1] <= self._clock() or left[0] < 1:
            return False
        left[0] -= 1
        return True
