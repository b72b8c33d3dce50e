"""The emergency state and the bus that hands it to whoever watches (node, UI, CLI)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from hearthnet import clock

Mode = Literal["online", "degraded", "offline"]


@dataclass(frozen=True)
class EmergencyState:
    mode: Mode
    since: str
    last_probe: str | None = None
    probe_results: dict[str, bool] = field(default_factory=dict)


class StateBus:
    """The current state, and every change after it to each subscriber (newest wins when a reader lags)."""

    def __init__(self, initial: EmergencyState | None = None) -> None:
        self._state = initial or EmergencyState("online", clock.iso())
        self._queues: set[asyncio.Queue[EmergencyState]] = set()

    def current(self) -> EmergencyState:
        return self._state

    async def subscribe(self) -> AsyncIterator[EmergencyState]:
        q: asyncio.Queue[EmergencyState] = asyncio.Queue(maxsize=1)
        self._queues.add(q)
        try:
            yield self._state
            while True:
                yield await q.get()
        finally:
            self._queues.discard(q)

    def _emit(self, state: EmergencyState) -> None:
        self._state = state
        for q in self._queues:
            if q.full():
                q.get_nowait()
            q.put_nowait(state)


__all__ = ["EmergencyState", "Mode", "StateBus"]
