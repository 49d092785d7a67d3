"""The app factory: `create_app(config) -> web.Application`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.client.api import client_for
from bot.client.profiles import ProfileCache
from bot.config import Config
from bot.followers.store import FollowerStore
from bot.metrics import Metrics
from bot.routing.dispatch import Dispatcher, Outcome, load_router
from bot.routing.router import Route
from bot.storage import open_storage
from bot.storage.base import StorageUnavailable
from bot.storage.memory import MemoryStorage
from bot.webauth.callback import add_web_authorization
from bot.webhook.customer_service import CustomerServiceSwitch
from bot.webhook.delivery import LateDelivery
from bot.webhook.journal import Journal
from bot.webhook.ledger import SUCCESS, ReplyLedger
from bot.webhook.pending import PendingAnswers
from bot.webhook.quota import CustomerServiceQuota
from bot.webhook.recovery import recover, sweep_pending, watch
from bot.webhook.replay import ReplayGuard
from bot.webhook.services import SERVICES, Services
from bot.webhook.typing import TypingIndicator
from bot.webhook.views import STARTED, handshake, healthz, metrics, receive
from bot.wechat.crypto import MessageCrypto
from bot.wechat.messages import Message
from bot.wechat.replies import max_articles_for, render_reply

log = logging.getLogger(__name__)


def create_app(config: Config) -> web.Application:
    """The bot as an aiohttp application; resources open on startup and close on cleanup."""
    router = load_router(config.handlers)  # import errors surface now, not on the first message
    app = web.Application(client_max_size=config.max_body_bytes)
    app[STARTED] = time.time()

    async def services(app: web.Application) -> AsyncIterator[None]:
        services, session = await _open(config, router.routes())
        app[SERVICES] = services
        # Before the first push: with Redis, a lease others see; then the last run's leftovers.
        watcher = None
        with contextlib.suppress(StorageUnavailable):
            await services.pending.load()
        if services.local:
            await recover(services)
        else:
            with contextlib.suppress(StorageUnavailable):
                await services.journal.renew_lease()
            watcher = asyncio.create_task(watch(services), name="journal-watch")
        sweeper = asyncio.create_task(sweep_pending(services), name="pending-sweep")
        try:
            yield
        finally:
            for task in (watcher, sweeper):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await _close(services, session)

    app.cleanup_ctx.append(services)
    app.router.add_get(config.webhook_path, handshake)
    app.router.add_post(config.webhook_path, receive)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    add_web_authorization(app, config, lambda app: (app[SERVICES].storage, app[SERVICES].followers))
    return app


async def _open(config: Config, routes: Iterable[Route]) -> tuple[Services, aiohttp.ClientSession]:
    metrics = Metrics()
    storage = await open_storage(
        redis_url=config.redis_url or None,
        namespace=f"wechat-bot:{config.app_id}",
        data_dir=Path(config.data_dir),
        max_entries=config.storage_max_entries,
        timeout=config.redis_timeout,
        observe=metrics.on_redis_call,
    )
    shared = storage if config.redis_url else None
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=config.api_timeout),
        connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
    )
    api = client_for(config, session, storage, observer=metrics)
    profiles = ProfileCache(
        api,
        size=config.profile_cache_size,
        ttl=config.profile_cache_ttl,
        timeout=config.profile_timeout,
        shared=shared,
    )
    switch = CustomerServiceSwitch(config.customer_service)
    pending = PendingAnswers(
        storage,
        ttl=config.pending_ttl,
        limit=config.pending_per_follower,
        observe=metrics.on_pending,
    )
    journal = Journal(storage, shared=shared is not None)
    quota = CustomerServiceQuota(config.profile_cache_size)
    delivery = LateDelivery(
        api,
        deadline=config.delivery_deadline,
        switch=switch,
        pending=pending,
        journal=journal,
        quota=quota,
        observe=metrics.on_delivery,
    )

    def render(result: tuple[Message, Outcome]) -> str:
        msg, outcome = result
        if outcome.reply is None:
            return SUCCESS
        return render_reply(
            outcome.reply,
            to_user=msg.from_user,
            from_user=msg.to_user,
            create_time=int(time.time()),
            max_articles=max_articles_for(msg.msg_type),
        )

    def on_late(result: tuple[Message, Outcome]) -> None:
        msg, outcome = result
        replies = [] if outcome.reply is None else [outcome.reply, *outcome.extra]
        delivery.submit(msg.from_user, replies, handler=outcome.handler, key=msg.dedup_key)

    def on_given(result: tuple[Message, Outcome]) -> None:
        msg, outcome = result
        if outcome.extra:  # a list's replies after the passive one
            delivery.submit(msg.from_user, outcome.extra, handler=outcome.handler)

    ledger: ReplyLedger[tuple[Message, Outcome]] = ReplyLedger(
        size=config.dedup_size,
        ttl=config.dedup_ttl,
        render=render,
        on_late=on_late,
        shared=shared,
        hold=lambda: not switch.available,  # no customer-service API: hold WeChat's retries
        on_given=on_given,
    )
    crypto = None
    if config.encoding_aes_key:
        crypto = MessageCrypto(
            config.encoding_aes_key, config.app_id, config.encoding_aes_key_previous or None
        )
    metrics.in_flight.set_function(lambda: len(ledger.running))
    metrics.journal_entries.set_function(lambda: len(journal))
    services = Services(
        config=config,
        storage=storage,
        api=api,
        followers=FollowerStore(storage),
        profiles=profiles,
        dispatcher=Dispatcher(list(routes), observe=metrics.on_handler),
        ledger=ledger,
        delivery=delivery,
        replay=ReplayGuard(
            shared or MemoryStorage(config.nonce_cache_size),
            window=config.timestamp_window,
            check_nonce=config.nonce_check,
        ),
        crypto=crypto,
        metrics=metrics,
        customer_service=switch,
        pending=pending,
        journal=journal,
        typing=TypingIndicator(api, switch, observe=metrics.on_typing),
        quota=quota,
    )
    return services, session


async def _close(services: Services, session: aiohttp.ClientSession) -> None:
    """Finish in-flight handlers and late deliveries within the grace period, then close."""
    grace_ends = time.monotonic() + services.config.shutdown_grace
    running = set(services.ledger.running)
    if running:
        log.info("waiting for %d running handler(s)", len(running))
        _, left = await asyncio.wait(running, timeout=max(0.0, grace_ends - time.monotonic()))
        for task in left:
            task.cancel()
        if left:
            log.error(
                "%d handler(s) still running at the end of the grace period: cancelled; their"
                " accepted messages stay in the journal for the next start",
                len(left),
            )
    await asyncio.sleep(0)  # let completion callbacks schedule their deliveries
    pending = len(services.delivery.pending)
    if pending:
        log.info("waiting for %d late delivery(ies)", pending)
    unfinished = await services.delivery.drain(max(0.0, grace_ends - time.monotonic()))
    if unfinished:
        log.error(
            "%d late delivery(ies) unfinished at the end of the grace period: left in the"
            " journal for the next start",
            unfinished,
        )
    await services.ledger.flush()
    await services.profiles.close()
    await session.close()
    await services.storage.close()
