"""Per (node, capability) health: a window of recent results, latency percentiles,
and quarantine when the success rate drops below the threshold."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

MIN_SAMPLES = 5  # too few calls say nothing about a node


@dataclass
class Health:
    results: deque[tuple[bool, float]]
    quarantined_until: float = 0.0
    quarantines: int = 0
    _sorted: list[float] | None = None  # successful latencies, sorted; None when stale

    def add(self, ok: bool, ms: float) -> None:
        self.results.append((ok, ms))
        self._sorted = None

    def clear(self) -> None:
        self.results.clear()
        self._sorted = None

    @property
    def success_rate(self) -> float:
        if not self.results:
            return 1.0
        return sum(1 for ok, _ in self.results if ok) / len(self.results)

    def percentile(self, q: float) -> float | None:
        if self._sorted is None:  # routing asks on every call; sort once per change
            self._sorted = sorted(ms for ok, ms in self.results if ok)
        lat = self._sorted
        if not lat:
            return None
        return lat[min(len(lat) - 1, int(q * len(lat)))]


@dataclass
class HealthTracker:
    window: int = 100
    threshold: float = 0.5
    quarantine_seconds: float = 60.0
    _by_key: dict[tuple[str, str], Health] = field(default_factory=dict)
    total_quarantines: int = 0

    def get(self, node_id: str, capability: str) -> Health:
        key = (node_id, capability)
        h = self._by_key.get(key)
        if h is None:
            h = self._by_key[key] = Health(deque(maxlen=self.window))
        return h

    def record(self, node_id: str, capability: str, *, success: bool, latency_ms: float) -> None:
        h = self.get(node_id, capability)
        h.add(success, latency_ms)
        now = time.monotonic()
        if h.quarantined_until <= now and len(h.results) >= MIN_SAMPLES and h.success_rate < self.threshold:
            h.quarantined_until = now + self.quarantine_seconds
            h.quarantines += 1
            self.total_quarantines += 1

    def is_quarantined(self, node_id: str, capability: str) -> bool:
        h = self._by_key.get((node_id, capability))
        if h is None or h.quarantined_until == 0.0:
            return False
        if h.quarantined_until > time.monotonic():
            return True
        # Released: start from a clean window so old failures do not re-quarantine at once.
        h.quarantined_until = 0.0
        h.clear()
        return False

    def snapshot(self) -> dict[str, dict[str, float | None]]:
        return {
            f"{n}|{c}": {"success_rate": h.success_rate, "p50_ms": h.percentile(0.5), "p99_ms": h.percentile(0.99), "calls": len(h.results)}
            for (n, c), h in self._by_key.items()
        }


__all__ = ["MIN_SAMPLES", "Health", "HealthTracker"]
