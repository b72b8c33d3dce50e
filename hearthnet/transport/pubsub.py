"""Long-poll publish/subscribe: `GET /pubsub/v1/subscribe?topic=T&last_seq=N&timeout=S`.

Each topic keeps its last items in a ring; a subscriber gets every item after
`last_seq`, waiting up to `timeout` for the first one. Memory stays bounded.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

TOPICS = ("events", "peers", "capabilities")
RING = 1000


class PubSub:
    def __init__(self) -> None:
        self._rings: dict[str, deque[tuple[int, dict[str, Any]]]] = {t: deque(maxlen=RING) for t in TOPICS}
        self._seq: dict[str, int] = {t: 0 for t in TOPICS}
        self._changed: dict[str, asyncio.Event] = {}

    def _event(self, topic: str) -> asyncio.Event:
        ev = self._changed.get(topic)
        if ev is None:
            ev = self._changed[topic] = asyncio.Event()
        return ev

    def publish(self, topic: str, payload: dict[str, Any]) -> int:
        """Call on the event loop's thread."""
        self._seq[topic] += 1
        self._rings[topic].append((self._seq[topic], payload))
        ev = self._event(topic)
        ev.set()
        self._changed[topic] = asyncio.Event()
        return self._seq[topic]

    async def subscribe(self, topic: str, *, last_seq: int = 0, timeout_seconds: float = 30.0) -> dict[str, Any]:
        from hearthnet.errors import HearthNetError

        if topic not in self._rings:
            raise HearthNetError("not_found", f"no topic {topic!r} (topics: {', '.join(TOPICS)})")
        if self._seq[topic] <= last_seq:
            try:
                await asyncio.wait_for(self._event(topic).wait(), timeout_seconds)
            except TimeoutError:
                pass
        items = [{"seq": s, "item": p} for s, p in self._rings[topic] if s > last_seq]
        return {"topic": topic, "seq": self._seq[topic], "items": items}


__all__ = ["TOPICS", "PubSub"]
