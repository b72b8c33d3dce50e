"""Choosing the node for a call.

Order of candidates (docs/contract.md, "Routing"):
1. compatible entries (same major, minor >= asked, params filter), quarantined ones left out;
2. the session's sticky node first, while it is still a candidate;
3. then, with prefer_local, the local entry while its load is under local_load_threshold;
4. then by score, lowest first, ties by node id:

    score = W_LOAD*load + W_P50*(p50_ms/100) + W_P99*(p99_ms/1000) + W_FAIL*(1 - success_rate) + W_REMOTE*(not local)

where load = in-flight calls / max_concurrent, p50/p99 come from the health window
(UNKNOWN_P50_MS and twice that when a node has no successful calls yet), and
success_rate is 1.0 with no history. The whole ranked list is returned so the bus
can fail over in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hearthnet.bus.capability import CapabilityEntry, Version
from hearthnet.bus.health import HealthTracker
from hearthnet.bus.registry import Registry

W_LOAD = 1.0
W_P50 = 0.5
W_P99 = 0.25
W_FAIL = 2.0
W_REMOTE = 0.1
UNKNOWN_P50_MS = 50.0


@dataclass(frozen=True)
class RouteRequest:
    capability: str
    version: Version
    session_id: str | None = None
    params_filter: Callable[[dict[str, Any]], bool] | None = None
    params: dict[str, Any] | None = None


def score(entry: CapabilityEntry, health: HealthTracker) -> float:
    h = health.get(entry.node_id, entry.name)
    p50 = h.percentile(0.5)
    p99 = h.percentile(0.99)
    p50 = UNKNOWN_P50_MS if p50 is None else p50
    p99 = 2 * p50 if p99 is None else p99
    return (
        W_LOAD * entry.load
        + W_P50 * (p50 / 100.0)
        + W_P99 * (p99 / 1000.0)
        + W_FAIL * (1.0 - h.success_rate)
        + (0.0 if entry.is_local else W_REMOTE)
    )


class Router:
    def __init__(self, registry: Registry, health: HealthTracker, *, prefer_local: bool = True, local_load_threshold: float = 0.8) -> None:
        self.registry = registry
        self.health = health
        self.prefer_local = prefer_local
        self.local_load_threshold = local_load_threshold
        self._sticky: dict[str, str] = {}

    def candidates(self, req: RouteRequest) -> tuple[list[CapabilityEntry], int]:
        """(usable entries, how many were left out as quarantined)."""
        found = self.registry.find(req.capability, req.version, req.params_filter, req.params)
        # Another node's `self` capability answers only that node: never a route for us.
        found = [e for e in found if e.is_local or e.spec.get("trust_required") != "self"]
        usable = [e for e in found if not self.health.is_quarantined(e.node_id, e.name)]
        return usable, len(found) - len(usable)

    def rank(self, req: RouteRequest) -> list[CapabilityEntry]:
        usable, _ = self.candidates(req)
        ranked = usable if len(usable) < 2 else sorted(usable, key=lambda e: (score(e, self.health), e.node_id))
        if self.prefer_local:
            local = [e for e in ranked if e.is_local and e.load < self.local_load_threshold]
            ranked = local[:1] + [e for e in ranked if e not in local[:1]]
        if req.session_id and req.session_id in self._sticky:
            node = self._sticky[req.session_id]
            pinned = [e for e in ranked if e.node_id == node]
            ranked = pinned[:1] + [e for e in ranked if e not in pinned[:1]]
        return ranked

    def route(self, req: RouteRequest) -> CapabilityEntry | None:
        ranked = self.rank(req)
        return ranked[0] if ranked else None

    def stick(self, session_id: str | None, node_id: str) -> None:
        if session_id:
            if len(self._sticky) > 10000:  # bounded: forget the oldest sessions
                for k in list(self._sticky)[:1000]:
                    del self._sticky[k]
            self._sticky[session_id] = node_id

    def release_session(self, session_id: str) -> None:
        self._sticky.pop(session_id, None)


__all__ = ["UNKNOWN_P50_MS", "W_FAIL", "W_LOAD", "W_P50", "W_P99", "W_REMOTE", "RouteRequest", "Router", "score"]
