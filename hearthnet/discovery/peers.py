"""The peer registry: nodes this node knows, how it learnt of them, and their verified manifests.

A peer's capabilities reach the bus only after its manifest was fetched and
verified; announcements (mDNS, UDP) only say where to fetch it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hearthnet.identity.manifest import NodeManifest

STALE_SECONDS = 90.0
STALE_SECONDS_AGGRESSIVE = 30.0


@dataclass
class PeerRecord:
    url: str
    source: str  # static | join | mdns | udp
    node_id: str | None = None  # known once a manifest verified (or announced, unverified)
    manifest: NodeManifest | None = None
    last_seen: float = field(default_factory=time.monotonic)
    last_manifest: float = 0.0
    rtt_ms: float | None = None
    failures: int = 0

    @property
    def verified(self) -> bool:
        return self.manifest is not None

    def as_dict(self) -> dict[str, object]:
        m = self.manifest
        return {
            "url": self.url,
            "node_id": self.node_id,
            "display_name": m.display_name if m else None,
            "profile": m.profile if m else None,
            "source": self.source,
            "verified": self.verified,
            "age_seconds": round(time.monotonic() - self.last_seen, 1),
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 2),
            "capabilities": sorted({c.name for c in m.capabilities}) if m else [],
        }


class PeerRegistry:
    def __init__(self, our_node_id: str) -> None:
        self.our_node_id = our_node_id
        self._by_url: dict[str, PeerRecord] = {}
        self._lock = threading.RLock()
        self.stale_seconds = STALE_SECONDS
        self._listeners: list[Callable[[str, PeerRecord], None]] = []

    def add_listener(self, fn: Callable[[str, PeerRecord], None]) -> None:
        self._listeners.append(fn)

    def _emit(self, kind: str, rec: PeerRecord) -> None:
        for fn in list(self._listeners):
            fn(kind, rec)

    def seen(self, url: str, source: str, node_id: str | None = None) -> tuple[PeerRecord, bool]:
        """Note an announcement or configured address. Returns (record, is_new)."""
        url = url.rstrip("/")
        with self._lock:
            rec = self._by_url.get(url)
            new = rec is None
            if rec is None:
                rec = self._by_url[url] = PeerRecord(url, source, node_id)
            rec.last_seen = time.monotonic()
            if node_id and not rec.verified:
                rec.node_id = node_id
        if new:
            self._emit("added", rec)
        return rec, new

    def verified(self, url: str, manifest: NodeManifest, rtt_ms: float | None = None) -> PeerRecord:
        with self._lock:
            rec, _ = self.seen(url, "static")
            rec.manifest, rec.node_id, rec.failures = manifest, manifest.node_id, 0
            rec.last_manifest = rec.last_seen = time.monotonic()
            rec.rtt_ms = rtt_ms
            # One node, one address: drop older records of the same node at other URLs.
            for other in [u for u, r in self._by_url.items() if r.node_id == manifest.node_id and u != rec.url and r.source != "static"]:
                self._by_url.pop(other)
        self._emit("updated", rec)
        return rec

    def failed(self, url: str) -> PeerRecord | None:
        with self._lock:
            rec = self._by_url.get(url.rstrip("/"))
            if rec is not None:
                rec.failures += 1
            return rec

    def remove(self, url: str) -> PeerRecord | None:
        with self._lock:
            rec = self._by_url.pop(url.rstrip("/"), None)
        if rec is not None:
            self._emit("removed", rec)
        return rec

    def get(self, url: str) -> PeerRecord | None:
        return self._by_url.get(url.rstrip("/"))

    def by_node(self, node_id: str) -> PeerRecord | None:
        with self._lock:
            return next((r for r in self._by_url.values() if r.node_id == node_id), None)

    def all(self) -> list[PeerRecord]:
        with self._lock:
            return list(self._by_url.values())

    def live(self) -> list[PeerRecord]:
        return [r for r in self.all() if r.verified]

    def set_pruning_aggressive(self, enabled: bool) -> None:
        self.stale_seconds = STALE_SECONDS_AGGRESSIVE if enabled else STALE_SECONDS

    def prune_stale(self, keep_sources: tuple[str, ...] = ("static", "join")) -> list[PeerRecord]:
        """Forget announced peers not seen for stale_seconds (configured ones are kept)."""
        cutoff = time.monotonic() - self.stale_seconds
        with self._lock:
            gone = [r for r in self._by_url.values() if r.last_seen < cutoff and r.source not in keep_sources]
            for r in gone:
                self._by_url.pop(r.url, None)
        for r in gone:
            self._emit("removed", r)
        return gone


__all__ = ["STALE_SECONDS", "PeerRecord", "PeerRegistry"]
