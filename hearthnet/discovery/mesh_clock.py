"""Mesh time: how far this node's clock is from its peers', learnt from their signed manifests.

Each verified manifest carries the peer's `issued_at`, signed roughly half a round trip
before it arrived; the median of (peer clock − our clock) over the peers is the mesh
offset. A node that may learn time from its peers (`transport.learn_time_from_peers`)
corrects its own clock by it when it is more than a couple of seconds off — a box without
a battery-backed clock or NTP otherwise signs requests its peers refuse as stale.
"""

from __future__ import annotations

import statistics

from hearthnet import clock

CORRECT_ABOVE_SECONDS = 2.0  # smaller offsets are the noise of round-trip estimates


class MeshClock:
    def __init__(self) -> None:
        self.offsets: dict[str, float] = {}

    def observe(self, node_id: str, issued_at: str, rtt_ms: float) -> None:
        """A peer's manifest, signed at `issued_at`, arrived `rtt_ms` after we asked for it."""
        self.offsets[node_id] = clock.parse_iso(issued_at) - (clock.now() - rtt_ms / 2000)

    def forget(self, node_id: str) -> None:
        self.offsets.pop(node_id, None)

    def offset(self) -> float | None:
        """Median (peer clock − our clock) over the peers; None without peers."""
        vals = list(self.offsets.values())
        return statistics.median(vals) if vals else None

    def learn(self) -> float | None:
        """Correct this process's clock by the mesh offset when it is large; returns the correction applied."""
        off = self.offset()
        if off is None or abs(off) <= CORRECT_ABOVE_SECONDS:
            return None
        clock.set_offset(clock.offset() + off)
        self.offsets = {k: v - off for k, v in self.offsets.items()}
        return off


__all__ = ["CORRECT_ABOVE_SECONDS", "MeshClock"]
