"""Prometheus metrics of the receiver, on a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ReceiverMetrics:
    """What the receiver counts: items received, accepted, dropped by reason, duplicates."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ingest_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
            registry=r,
        )  # fmt: skip
        self.received = Counter(
            "ingest_notifications_received", "Notification items received", ["endpoint"],
            registry=r,
        )  # fmt: skip
        self.accepted = Counter(
            "ingest_notifications_accepted", "Items durably enqueued", ["kind"], registry=r
        )
        self.dropped = Counter(
            "ingest_notifications_dropped", "Items dropped, by reason", ["reason"], registry=r
        )
        self.security_events_suppressed = Counter(
            "ingest_security_events_suppressed",
            "Requests with drops not logged: the client's line of the last second was written",
            registry=r,
        )  # fmt: skip
        self.duplicates = Counter(
            "ingest_notifications_duplicate", "Exact redeliveries not enqueued again", registry=r
        )
        self.enqueue_failures = Counter(
            "ingest_enqueue_failures", "Requests answered 503 because Redis failed", registry=r
        )
        self.closed_without_request = Counter(
            "ingest_connections_closed_without_request",
            "Connections closed because no request head arrived in time (ingest serve)",
            registry=r,
        )  # fmt: skip
        self.enqueue_seconds = Histogram(
            "ingest_enqueue_seconds", "Time to store one request's items in Redis",
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "ingest_request_seconds", "Time to answer a request", ["endpoint"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self._by_request: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
        self._children: dict[tuple[int, str], Counter] = {}
        self.registry_size = Gauge(
            "ingest_subscriptions_known", "Subscriptions in the receiver's registry copy",
            registry=r,
        )  # fmt: skip

        self._health: Collector | None = None

    def watch_health(self, collector: Collector) -> None:
        """Add the subscription health gauges read from Redis at scrape time (once)."""
        if self._health is None:
            self.registry.register(collector)
            self._health = collector

    def received_on(self, endpoint: str) -> Counter:
        return self._child(self.received, endpoint)

    def accepted_of(self, kind: str) -> Counter:
        return self._child(self.accepted, kind)

    def _child(self, metric: Counter, label: str) -> Counter:
        key = (id(metric), label)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(label)
        return child

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count and time one request (labelled children cached: this runs per request)."""
        children = self._by_request.get((endpoint, status))
        if children is None:
            children = (
                self.requests.labels(endpoint, str(status)),
                self.request_seconds.labels(endpoint),
            )
            self._by_request[(endpoint, status)] = children
        children[0].inc()
        children[1].observe(seconds)
