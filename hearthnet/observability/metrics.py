"""Prometheus metrics with the standard names of the reference (X03 §4.2).

One registry per node (not the process-global one), so several nodes in one
process — tests, benchmarks — keep separate figures.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests_total = Counter("hearthnet_requests_total", "Bus calls by capability and result.", ["capability", "result"], registry=r)
        self.request_duration_ms = Histogram(
            "hearthnet_request_duration_ms", "Bus call latency in milliseconds.", ["capability"],
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000), registry=r,
        )
        self.active_streams = Gauge("hearthnet_active_streams", "Open capability streams.", ["capability"], registry=r)
        self.nodes_online = Gauge("hearthnet_nodes_online", "Peers currently known.", ["community"], registry=r)
        self.event_log_size = Gauge("hearthnet_event_log_size", "Valid events in the log.", ["community"], registry=r)
        self.event_log_lamport_head = Gauge("hearthnet_event_log_lamport_head", "Highest Lamport time in the log.", ["community"], registry=r)
        self.emergency_mode = Gauge("hearthnet_emergency_mode", "1 for the current emergency mode.", ["state"], registry=r)
        self.blob_storage_bytes = Gauge("hearthnet_blob_storage_bytes", "Bytes in the blob store.", registry=r)
        self.llm_tokens_generated_total = Counter("hearthnet_llm_tokens_generated_total", "Tokens generated.", ["model", "backend"], registry=r)
        self.llm_concurrent = Gauge("hearthnet_llm_concurrent", "LLM generations running.", ["model"], registry=r)
        self.capability_health_success_rate = Gauge(
            "hearthnet_capability_health_success_rate", "Success rate in the health window.", ["capability", "node"], registry=r
        )
        self.rate_limited_total = Counter("hearthnet_rate_limited_total", "Requests limited.", ["capability", "reason"], registry=r)
        self.signature_failures_total = Counter("hearthnet_signature_failures_total", "Rejected signed requests.", ["reason"], registry=r)
        self.quarantines_total = Counter("hearthnet_quarantines_total", "Quarantines started.", registry=r)
        self.emergency_mode.labels(state="online").set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE", "Metrics"]
