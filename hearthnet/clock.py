"""The node's one view of wall-clock time, in UTC, as ISO-8601 text with milliseconds."""

from __future__ import annotations

import time
from datetime import datetime

from hearthnet.errors import HearthNetError

# Seconds added to the system clock. Zero unless the node learnt a correction
# from its peers (a box without a hardware clock may boot in 1970).
_offset = 0.0


def set_offset(seconds: float) -> None:
    global _offset
    _offset = float(seconds)


def offset() -> float:
    return _offset


def now() -> float:
    return time.time() + _offset


def iso(ts: float | None = None) -> str:
    t = now() if ts is None else ts
    g = time.gmtime(t)  # cheaper than datetime.strftime on the append path
    return f"{g.tm_year:04d}-{g.tm_mon:02d}-{g.tm_mday:02d}T{g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d}.{int(t * 1000) % 1000:03d}Z"


def parse_iso(text: str) -> float:
    """Seconds since the epoch of an ISO-8601 UTC time ending in Z."""
    if not isinstance(text, str) or not text.endswith("Z"):
        raise HearthNetError("bad_request", f"not a UTC timestamp ending in Z: {str(text)[:40]!r}")
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00").timestamp()
    except ValueError as exc:
        raise HearthNetError("bad_request", f"not an ISO-8601 timestamp: {text[:40]!r}") from exc


__all__ = ["iso", "now", "offset", "parse_iso", "set_offset"]
