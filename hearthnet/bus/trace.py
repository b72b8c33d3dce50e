"""Every bus call, recorded in a ring buffer (`/trace/recent`, `hearthnet trace`)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CallTraceEvent:
    ts: str
    trace_id: str
    capability: str
    version: str
    from_node: str
    to_node: str
    is_local: bool
    result: str  # "ok" or an error code
    ms: float
    attempts: int = 1
    frames: int = 0
    # Copied from an answer or `done` frame that carries them (llm.*), so traces show usage.
    tokens_in: int | None = None
    tokens_out: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def usage_of(data: Any) -> tuple[int | None, int | None]:
    """(tokens_in, tokens_out) when an answer or done frame reports them."""
    if isinstance(data, dict) and isinstance(data.get("tokens_out"), int):
        t_in = data.get("tokens_in")
        return (t_in if isinstance(t_in, int) else None), data["tokens_out"]
    return None, None


class TraceHook:
    def __init__(self, size: int) -> None:
        self._ring: deque[CallTraceEvent] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.counts: dict[tuple[str, str], int] = {}

    def record(self, ev: CallTraceEvent) -> None:
        with self._lock:
            self._ring.append(ev)
            key = (ev.capability, ev.result)
            self.counts[key] = self.counts.get(key, 0) + 1

    def recent(self, n: int = 50, capability: str | None = None) -> list[CallTraceEvent]:
        with self._lock:
            items = [e for e in self._ring if capability is None or e.capability == capability]
        return items[-n:]


__all__ = ["CallTraceEvent", "TraceHook", "usage_of"]
