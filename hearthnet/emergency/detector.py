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


class Detector:
    def __init__(self, config: EmergencyConfig, state_bus: StateBus, on_change: OnChange | None = None) -> None:
        self.cfg = config
        self.targets = [parse_target(t) for t in config.probe_targets]  # config_invalid on a bad target, before anything runs
        self.state_bus = state_bus
        self.on_change = on_change
        self._stop = asyncio.Event()
        self.candidate: Mode = state_bus.current().mode
        self.candidate_since: float | None = None

    async def _round(self) -> dict[str, bool]:
        got = await asyncio.gather(*(probe(t, self.cfg.probe_timeout_seconds) for t in self.targets))
        return {t.text: ok for t, ok in zip(self.targets, got, strict=True)}

    def _flip(self, new: Mode, results: dict[str, bool], last_probe: str | None) -> None:
        old = self.state_bus.current().mode
        self.state_bus._emit(EmergencyState(new, clock.iso(), last_probe, results))
        self.candidate_since = None
        if self.on_change is not None:
            self.on_change(old, new)

    async def run(self) -> None:
        if not self.targets:
            return  # nothing to probe: the node stays online and never reaches out
        next_probe = time.monotonic()
        results: dict[str, bool] = {}
        last: str | None = None
        while not self._stop.is_set():
            mode = self.state_bus.current().mode
            wake = next_probe
            if self.candidate != mode and self.candidate_since is not None:
                wake = min(wake, self.candidate_since + self.cfg.debounce_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, wake - time.monotonic()))
                break
            now = time.monotonic()
            if self.candidate != mode and self.candidate_since is not None and now >= self.candidate_since + self.cfg.debounce_seconds:
                self._flip(self.candidate, results, last)
                continue
            if now < next_probe:
                continue
            results = await self._round()
            done, last = time.monotonic(), clock.iso()
            seen = reading(results)
            if seen == mode:
                self.candidate, self.candidate_since = mode, None
            elif seen != self.candidate or self.candidate_since is None:
                self.candidate, self.candidate_since = seen, done
            if self.candidate != mode and self.cfg.debounce_seconds == 0:
                self._flip(self.candidate, results, last)
            else:
                cur = self.state_bus.current()
                self.state_bus._emit(EmergencyState(cur.mode, cur.since, last, results))
            calm = self.state_bus.current().mode == "online" and self.candidate == "online"
            next_probe = done + (self.cfg.probe_interval_online if calm else self.cfg.probe_interval_offline)

    async def shutdown(self) -> None:
        self._stop.set()


__all__ = ["Detector", "reading"]
