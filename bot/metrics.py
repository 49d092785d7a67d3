"""Prometheus metrics, one registry per app (so tests can run many apps in one process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 4.0, 10.0)


class Metrics:
    """Every metric the bot exposes at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "wechat_bot_requests",
            "Webhook requests by message type and outcome.",
            ["msg_type", "outcome"],
            registry=r,
        )
        self.handler_seconds = Histogram(
            "wechat_bot_handler_seconds",
            "Handler latency by handler.",
            ["handler"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.handler_errors = Counter(
            "wechat_bot_handler_errors",
            "Handlers that raised, by handler.",
            ["handler"],
            registry=r,
        )
        self.budget_overruns = Counter(
            "wechat_bot_reply_budget_overruns",
            "Replies that missed the budget and went to the customer-service API.",
            registry=r,
        )
        self.dedup_hits = Counter(
            "wechat_bot_dedup_hits", "Retries answered from the reply ledger.", registry=r
        )
        self.upstream_calls = Counter(
            "wechat_bot_upstream_calls",
            "WeChat API calls by endpoint and errcode.",
            ["endpoint", "errcode"],
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "wechat_bot_upstream_seconds",
            "WeChat API call latency by endpoint.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.token_refreshes = Counter(
            "wechat_bot_token_refreshes", "Access tokens fetched from the platform.", registry=r
        )
        self.deliveries = Counter(
            "wechat_bot_customer_service_deliveries",
            "Late replies by outcome (delivered, failed, dropped, unsupported).",
            ["outcome"],
            registry=r,
        )
        self.in_flight = Gauge(
            "wechat_bot_handlers_in_flight", "Handler tasks running now.", registry=r
        )

        # labels() takes a lock and hashes its arguments: keep the children we use
        self._request_children: dict[tuple[str, str], Any] = {}
        self._handler_children: dict[str, Any] = {}

    def count_request(self, msg_type: str, outcome: str) -> None:
        """Count one webhook request."""
        child = self._request_children.get((msg_type, outcome))
        if child is None:
            child = self.requests.labels(msg_type, outcome)
            if len(self._request_children) < 1024:
                self._request_children[(msg_type, outcome)] = child
        child.inc()

    # The APIObserver protocol of bot.api.
    def on_call(self, endpoint: str, errcode: int, seconds: float) -> None:
        """Count one upstream call."""
        self.upstream_calls.labels(endpoint, str(errcode)).inc()
        self.upstream_seconds.labels(endpoint).observe(seconds)

    def on_token_refresh(self) -> None:
        """Count one token fetch."""
        self.token_refreshes.inc()

    def on_handler(self, handler: str, seconds: float, failed: bool) -> None:
        """Record one handler run."""
        child = self._handler_children.get(handler)
        if child is None:
            child = self._handler_children[handler] = self.handler_seconds.labels(handler)
        child.observe(seconds)
        if failed:
            self.handler_errors.labels(handler).inc()

    def on_delivery(self, outcome: str) -> None:
        """Count one late delivery's outcome."""
        self.deliveries.labels(outcome).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
