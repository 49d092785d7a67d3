"""Prometheus metrics, one registry per app (so tests can run many apps in one process)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 4.0, 10.0)


class Metrics:
    """Every metric the bot exposes at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # The two metrics every message touches are plain counts, turned into metric
        # families only when /metrics is read: no lock, no label lookup per message.
        self.requests = RequestCounts()
        r.register(self.requests)
        self.handler_seconds = HandlerLatency(_LATENCY_BUCKETS)
        r.register(self.handler_seconds)
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
            "Late replies by outcome (delivered, failed, dropped, unsupported, pending).",
            ["outcome"],
            registry=r,
        )
        self.pending_answers = Counter(
            "wechat_bot_pending_answers",
            "Answers waiting for the follower's next message, by outcome (kept, expired,"
            " dropped, given_passive).",
            ["outcome"],
            registry=r,
        )
        self.recovered = Counter(
            "wechat_bot_recovered_messages",
            "Accepted messages found unfinished after a crash, by outcome (sent, rerun, dropped).",
            ["outcome"],
            registry=r,
        )
        self.journal_entries = Gauge(
            "wechat_bot_journal_entries",
            "Accepted messages of this instance whose answer is not settled yet.",
            registry=r,
        )
        self.typing = Counter(
            "wechat_bot_typing_indicators",
            "Typing indicators sent for slow handlers, by outcome (shown, failed).",
            ["outcome"],
            registry=r,
        )
        self.redis_calls = Counter(
            "wechat_bot_redis_calls",
            "Round trips to Redis by operation (claim_pushes carries a whole batch of pushes).",
            ["op"],
            registry=r,
        )
        self.in_flight = Gauge(
            "wechat_bot_handlers_in_flight", "Handler tasks running now.", registry=r
        )

    def count_request(self, msg_type: str, outcome: str) -> None:
        """Count one webhook request."""
        counts = self.requests.counts
        key = (msg_type, outcome)
        counts[key] = counts.get(key, 0) + 1

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
        self.handler_seconds.observe(handler, seconds)
        if failed:
            self.handler_errors.labels(handler).inc()

    def on_redis_call(self, op: str) -> None:
        """Count one round trip to Redis."""
        self.redis_calls.labels(op).inc()

    def on_delivery(self, outcome: str) -> None:
        """Count one late delivery's outcome."""
        self.deliveries.labels(outcome).inc()

    def on_pending(self, outcome: str) -> None:
        """Count one waiting answer's step."""
        self.pending_answers.labels(outcome).inc()

    def on_typing(self, outcome: str) -> None:
        """Count one typing indicator."""
        self.typing.labels(outcome).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


class RequestCounts(Collector):
    """`wechat_bot_requests_total` by message type and outcome (both bounded sets)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(
            "wechat_bot_requests",
            "Webhook requests by message type and outcome.",
            labels=["msg_type", "outcome"],
        )

    def describe(self) -> Iterable[Metric]:
        """The metric's name and type, for the registry's duplicate check."""
        yield self._family()

    def collect(self) -> Iterable[Metric]:
        """The counts as they are now."""
        family = self._family()
        for (msg_type, outcome), count in list(self.counts.items()):
            family.add_metric([msg_type, outcome], count)
        yield family


class HandlerLatency(Collector):
    """`wechat_bot_handler_seconds`: a histogram of handler latency by handler."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self._bounds = tuple(buckets)
        self._labels = [repr(float(b)) for b in self._bounds] + ["+Inf"]  # as prometheus-client
        # handler -> [count in each bucket (not cumulative; the last is +Inf), sum of seconds]
        self.runs: dict[str, tuple[list[int], list[float]]] = {}

    def observe(self, handler: str, seconds: float) -> None:
        """Record one run of `handler`."""
        runs = self.runs.get(handler)
        if runs is None:
            runs = self.runs[handler] = ([0] * (len(self._bounds) + 1), [0.0])
        runs[0][bisect_left(self._bounds, seconds)] += 1
        runs[1][0] += seconds

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(
            "wechat_bot_handler_seconds", "Handler latency by handler.", labels=["handler"]
        )

    def describe(self) -> Iterable[Metric]:
        """The metric's name and type, for the registry's duplicate check."""
        yield self._family()

    def collect(self) -> Iterable[Metric]:
        """Cumulative buckets, count and sum per handler."""
        family = self._family()
        for handler, (counts, total) in list(self.runs.items()):
            cumulative = list(accumulate(counts))
            family.add_metric(
                [handler], list(zip(self._labels, cumulative, strict=True)), sum_value=total[0]
            )
        yield family
