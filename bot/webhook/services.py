"""The services the webhook runs on, opened once per app (`bot.webhook.app` builds them)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.client.api import WeChatAPI
from bot.client.profiles import ProfileCache
from bot.config import Config
from bot.followers.store import FollowerStore
from bot.metrics import Metrics
from bot.routing.dispatch import Dispatcher, Outcome
from bot.storage.base import Storage
from bot.webhook.customer_service import CustomerServiceSwitch
from bot.webhook.delivery import LateDelivery
from bot.webhook.journal import Journal
from bot.webhook.ledger import ReplyLedger
from bot.webhook.pending import PendingAnswers
from bot.webhook.quota import CustomerServiceQuota
from bot.webhook.replay import ReplayGuard
from bot.webhook.typing import TypingIndicator
from bot.wechat.crypto import MessageCrypto
from bot.wechat.messages import Message


@dataclass(slots=True)
class Services:
    """Everything the push pipeline needs: configuration, stores, API client, tables."""

    config: Config
    storage: Storage
    api: WeChatAPI
    followers: FollowerStore
    profiles: ProfileCache
    dispatcher: Dispatcher
    ledger: ReplyLedger[tuple[Message, Outcome]]
    delivery: LateDelivery
    replay: ReplayGuard
    crypto: MessageCrypto | None
    metrics: Metrics
    customer_service: CustomerServiceSwitch
    pending: PendingAnswers
    journal: Journal
    typing: TypingIndicator
    quota: CustomerServiceQuota

    @property
    def local(self) -> bool:
        """Nothing is shared (no Redis): the replay guard and the ledger answer without I/O."""
        return not self.config.redis_url


SERVICES = web.AppKey("services", Services)
