"""Whether this account may use the customer-service API (platform notes §7).

Only verified accounts have it; the others get `48001 api unauthorized` from `custom/send` and
`custom/typing`. In `auto` mode the first 48001 turns the API off for the rest of the process:
late answers then reach the follower passively (`bot.webhook.ledger` holds WeChat's retries,
`bot.webhook.pending` keeps what is left for the follower's next message).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

UNAUTHORIZED = 48001  # the account has no customer-service API


class CustomerServiceSwitch:
    """The configured mode (`auto`, `on`, `off`) and what it has come to."""

    def __init__(self, mode: str) -> None:
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"customer_service must be auto, on or off, not {mode!r}")
        self._mode = mode
        self._refused = False

    @property
    def available(self) -> bool:
        """Late answers may go through the customer-service API."""
        return self._mode == "on" or (self._mode == "auto" and not self._refused)

    @property
    def status(self) -> str:
        """For /healthz: `on`, `off`, or `off (48001 …)` once `auto` turned it off."""
        if self._refused:
            return "off (48001: the account has no customer-service API)"
        return "off" if self._mode == "off" else "on"

    def refused(self, errcode: int) -> bool:
        """Note a customer-service call's errcode; True when it turned the API off."""
        if errcode != UNAUTHORIZED or self._mode != "auto" or self._refused:
            return False
        self._refused = True
        log.warning(
            "customer-service API refused with 48001 (unverified account): late answers now wait"
            " for WeChat's retries and the follower's next message (customer_service: auto)"
        )
        return True
