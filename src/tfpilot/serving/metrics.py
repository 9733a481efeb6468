"""Prometheus metrics of one app, in its own ``CollectorRegistry`` (never the global one).

With ``--workers N`` the CLI sets ``PROMETHEUS_MULTIPROC_DIR``; the metrics are then
written to shared files and ``/metrics`` of any worker reports the sum over all workers.

Example:
    >>> from tfpilot.serving.metrics import ServingMetrics
    >>> m = ServingMetrics()
    >>> m.observe_request("POST", "/v1/models/{name}:predict", 200, 0.002)
    >>> b"tfpilot_http_requests_total" in m.render()[0]
    True
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


def multiprocess_dir() -> str | None:
    """The shared metrics folder of a ``--workers N`` server, or None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServingMetrics:
    """The server's counters, histograms and gauges.

    Args:
        registry: where the metrics register (default: a new one, private to this app).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("tfpilot_http_requests", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("tfpilot_http_request_duration_seconds", "HTTP request latency.",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("tfpilot_http_requests_in_flight", "HTTP requests being answered.",
                               registry=r, multiprocess_mode="livesum")
        self.batch_size = Histogram("tfpilot_batch_size", "Instances per model call.",
                                    ["model"], buckets=BATCH_BUCKETS, registry=r)
        self.inference = Histogram("tfpilot_inference_duration_seconds", "Model call time per batch.",
                                   ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("tfpilot_queue_depth", "Instances waiting for a model call.",
                                 ["model"], registry=r, multiprocess_mode="livesum")
        self.instances = Counter("tfpilot_instances", "Instances predicted.", ["model"], registry=r)
        self.ready = Gauge("tfpilot_model_ready", "1 when the model is loaded and warmed up.",
                           ["model"], registry=r, multiprocess_mode="livemin")
        self._request_children: dict[tuple[str, str, int | str], tuple[Any, Any]] = {}
        self._batch_children: dict[str, tuple[Any, Any, Any]] = {}

    def observe_request(self, method: str, route: str, status: int | str, seconds: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:  # labels() costs a lock and a dict per call: keep the children
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(self, model: str, size: int, seconds: float) -> None:
        children = self._batch_children.get(model)
        if children is None:
            children = (self.batch_size.labels(model), self.inference.labels(model), self.instances.labels(model))
            self._batch_children[model] = children
        children[0].observe(size)
        children[1].observe(seconds)
        children[2].inc(size)

    def render(self) -> tuple[bytes, str]:
        """``(body, content_type)`` of the Prometheus text exposition."""
        if multiprocess_dir():
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
