"""The emergency-mode state machine.

Each round probes every configured target at once: all answer -> online, some -> degraded,
none -> offline. A new reading must hold for `debounce_seconds` before the mode flips;
the flip happens at the moment the reading has held that long (a timer, not the next
probe), so after the targets go away the mode changes between debounce and debounce +
interval + timeout later. A blip shorter than the debounce (a probe round that agrees
with the current mode again) flips nothing. While a change is pending or the node is not
online, rounds run at the short offline interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from hearthnet import clock
from hearthnet.config import EmergencyConfig
from hearthnet.emergency.probes import parse_target, probe
from hearthnet.emergency.state import EmergencyState, Mode, StateBus

OnChange = Callable[[Mode, Mode], None]


def reading(results: dict[str, bool]) -> Mode:
    ok = sum(results.values())
    return "online" if ok == len(results) else ("offline" if ok == 0 else "degraded")


class Debounce:
    """The timing rule alone, on times it is given (tests drive it without sleeping): a reading that
    differs from the mode becomes the candidate; the mode flips once the candidate has held for
    `seconds`; a reading that agrees with the mode again cancels it."""

    def __init__(self, mode: Mode, seconds: float) -> None:
        self.seconds = seconds
        self.candidate: Mode = mode
        self.since: float | None = None

    def observe(self, mode: Mode, seen: Mode, now: float) -> None:
        if seen == mode:
            self.candidate, self.since = mode, None
        elif seen != self.candidate or self.since is None:
            self.candidate, self.since = seen, now

    def pending(self, mode: Mode) -> bool:
        return self.candidate != mode and self.since is not None

    def due_at(self, mode: Mode) -> float | None:
        """When the pending candidate may become the mode (None: nothing pending)."""
        return self.since + self.seconds if self.pending(mode) and self.since is not None else None

    def due(self, mode: Mode, now: float) -> Mode | None:
        """The mode to flip to now, if the candidate has held long enough."""
        at = self.due_at(mode)
        return self.candidate if at is not None and now >= at else None

    def flipped(self) -> None:
        self.since = None


class Detector:
    def __init__(self, config: EmergencyConfig, state_bus: StateBus, on_change: OnChange | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.cfg = config
        self.targets = [parse_target(t) for t in config.probe_targets]  # config_invalid on a bad target, before anything runs
        self.state_bus = state_bus
        self.on_change = on_change
        self._stop = asyncio.Event()
        self.debounce = Debounce(state_bus.current().mode, config.debounce_seconds)
        self._now = monotonic

    async def _round(self) -> dict[str, bool]:
        got = await asyncio.gather(*(probe(t, self.cfg.probe_timeout_seconds) for t in self.targets))
        return {t.text: ok for t, ok in zip(self.targets, got, strict=True)}

    def _flip(self, new: Mode, results: dict[str, bool], last_probe: str | None) -> None:
        old = self.state_bus.current().mode
        self.state_bus._emit(EmergencyState(new, clock.iso(), last_probe, results))
        self.debounce.flipped()
        if self.on_change is not None:
            self.on_change(old, new)

    async def run(self) -> None:
        if not self.targets:
            return  # nothing to probe: the node stays online and never reaches out
        next_probe = self._now()
        results: dict[str, bool] = {}
        last: str | None = None
        while not self._stop.is_set():
            mode = self.state_bus.current().mode
            due_at = self.debounce.due_at(mode)
            wake = next_probe if due_at is None else min(next_probe, due_at)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, wake - self._now()))
                break
            now = self._now()
            if (flip := self.debounce.due(mode, now)) is not None:
                self._flip(flip, results, last)
                continue
            if now < next_probe:
                continue
            results = await self._round()
            done, last = self._now(), clock.iso()
            self.debounce.observe(mode, reading(results), done)
            if (flip := self.debounce.due(mode, done)) is not None:  # a debounce of 0 flips at once
                self._flip(flip, results, last)
            else:
                cur = self.state_bus.current()
                self.state_bus._emit(EmergencyState(cur.mode, cur.since, last, results))
            calm = self.state_bus.current().mode == "online" and self.debounce.candidate == "online"
            next_probe = done + (self.cfg.probe_interval_online if calm else self.cfg.probe_interval_offline)

    async def shutdown(self) -> None:
        self._stop.set()


__all__ = ["Debounce", "Detector", "reading"]
