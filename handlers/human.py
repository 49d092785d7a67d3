"""Hand the conversation to people: "人工" / "human" answers with `transfer_customer_service`, and
WeChat moves the message (and what follows) to the agents' customer-service workbench.
The bot says nothing itself; the transfer is only valid in answer to a follower's message.
"""

from __future__ import annotations

import re

from bot import Context, Message, Reply, Router, TransferCustomerServiceReply

router = Router("human")

# The whole message must be the request: "human rights" is not a call for an agent
_ASK_FOR_AGENT = re.compile(
    r"^\s*(?:人工|人工客服|转人工|轉人工|客服|human|agent)\s*[!！.。]?\s*$", re.IGNORECASE
)


@router.text(_ASK_FOR_AGENT)
async def to_agent(msg: Message, ctx: Context) -> Reply:
    """Transfer to any online agent; `TransferCustomerServiceReply("kf1@account")` picks one."""
    return TransferCustomerServiceReply()
