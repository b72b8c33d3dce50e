"""Materialised views rebuilt from the log by replay.

A view is thrown away and rebuilt at will: `reset()` then `apply()` for every
valid event in log order. The engine applies new events as they arrive; when
an event lands *before* what was already applied (out-of-order arrival), or the
log says statuses changed (revocation, fork, late join), it rebuilds. Replay
does not re-verify: events were verified when they entered the log.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Protocol, runtime_checkable

from hearthnet.events.log import EventLog
from hearthnet.events.types import Event

Position = tuple[int, str, str]
ZERO: Position = (0, "", "")


@runtime_checkable
class MaterialisedView(Protocol):
    name: str
    # None: every event type.
    event_types: frozenset[str] | None

    def reset(self) -> None: ...

    def apply(self, event: Event) -> None: ...

    def snapshot_state(self) -> dict[str, Any]: ...

    def restore_state(self, state: dict[str, Any]) -> None: ...


class ReplayEngine:
    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._views: dict[str, MaterialisedView] = {}
        self._by_type: dict[str, list[MaterialisedView]] = {}
        self._all_types: list[MaterialisedView] = []
        self.position: Position = ZERO
        self.applied = 0
        self.rebuilds = 0
        self._lock = threading.RLock()
        log.add_listener(self.on_event)
        log.add_reset_listener(self.rebuild_all)

    def register(self, view: MaterialisedView) -> None:
        with self._lock:
            if view.name in self._views:
                raise ValueError(f"view {view.name!r} registered twice")
            self._views[view.name] = view
            if view.event_types is None:
                self._all_types.append(view)
            else:
                for t in view.event_types:
                    self._by_type.setdefault(t, []).append(view)
            view.reset()
            if self.position == ZERO:
                return  # nothing applied yet: the next catch_up() feeds every view
            for ev in self.log.replay(event_types=view.event_types):
                if ev.order_key > self.position:
                    break
                view.apply(ev)

    def view(self, name: str) -> MaterialisedView:
        return self._views[name]

    @property
    def views(self) -> dict[str, MaterialisedView]:
        return dict(self._views)

    def _apply(self, ev: Event) -> None:
        for v in self._by_type.get(ev.event_type, ()):
            v.apply(ev)
        for v in self._all_types:
            v.apply(ev)
        self.position = ev.order_key
        self.applied += 1

    def on_event(self, ev: Event) -> None:
        with self._lock:
            if ev.order_key > self.position:
                self._apply(ev)
            else:
                self.rebuild_all()

    def rebuild_all(self) -> None:
        with self._lock:
            for v in self._views.values():
                v.reset()
            self.position, self.applied = ZERO, 0
            self.rebuilds += 1
            self.catch_up()

    def catch_up(self) -> int:
        """Apply every valid event after the current position. Returns how many."""
        with self._lock:
            n = 0
            after = None if self.position == ZERO else self.position
            for ev in self.log.replay(after=after):
                self._apply(ev)
                n += 1
            return n

    def snapshot_state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "position": list(self.position),
                "applied": self.applied,
                "views": {name: v.snapshot_state() for name, v in sorted(self._views.items())},
            }

    def restore_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            missing = set(self._views) - set(state["views"])
            if missing:
                raise ValueError(f"snapshot lacks views {sorted(missing)}")
            for name, v in self._views.items():
                v.reset()
                v.restore_state(state["views"][name])
            self.position = tuple(state["position"])  # type: ignore[assignment]
            self.applied = state["applied"]


class ActivityView:
    """Per-author activity: events, last Lamport time and wall clock, counts per type.

    Feeds `hearthnet log --summary` and node status ("who was active when").
    """

    name = "activity"
    event_types = None

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.authors: dict[str, dict[str, Any]] = {}
        self.types: Counter[str] = Counter()

    def apply(self, event: Event) -> None:
        a = self.authors.get(event.author)
        if a is None:
            a = self.authors[event.author] = {"events": 0, "last_lamport": 0, "last_wall_clock": "", "types": {}}
        a["events"] += 1
        a["last_lamport"] = event.lamport
        a["last_wall_clock"] = event.wall_clock
        a["types"][event.event_type] = a["types"].get(event.event_type, 0) + 1
        self.types[event.event_type] += 1

    def snapshot_state(self) -> dict[str, Any]:
        return {"authors": self.authors, "types": dict(self.types)}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.authors = {k: {**v, "types": dict(v["types"])} for k, v in state["authors"].items()}
        self.types = Counter(state["types"])


__all__ = ["ZERO", "ActivityView", "MaterialisedView", "Position", "ReplayEngine"]
