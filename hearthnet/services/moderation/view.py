"""Which posts and file adverts are hidden, from moderation.item.hidden / .unhidden events.

An item's state is set by the latest of its moderation events (log order) whose author
is trusted or anchor *now*: a member who loses trust loses the effect of their hides
too, on every node alike, because the answer depends only on the log. The events
themselves stay in the log, and so do the hidden posts and adverts; only the listings
leave them out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hearthnet.events.types import Event
from hearthnet.types import TRUST_ORDER

LevelOf = Callable[[str], str]


@dataclass(frozen=True)
class Action:
    order: tuple[int, str, str]
    hidden: bool
    author: str
    reason: str
    at: str


class ModerationView:
    name = "moderation"
    event_types = frozenset({"moderation.item.hidden", "moderation.item.unhidden"})

    def __init__(self, level_of: LevelOf) -> None:
        self.level_of = level_of
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.actions: dict[tuple[str, str], list[Action]] = {}

    def apply(self, ev: Event) -> None:
        d = ev.data
        a = Action(ev.order_key, ev.event_type == "moderation.item.hidden", ev.author, d["reason"], ev.wall_clock)
        with self._lock:
            self.actions.setdefault((d["kind"], d["target"]), []).append(a)

    def _effective(self, key: tuple[str, str]) -> Action | None:
        acts = [a for a in self.actions.get(key, []) if TRUST_ORDER.get(self.level_of(a.author), 0) >= TRUST_ORDER["trusted"]]
        return max(acts, key=lambda a: a.order, default=None)

    def is_hidden(self, kind: str, target: str) -> bool:
        with self._lock:
            a = self._effective((kind, target))
        return bool(a and a.hidden)

    def hidden(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = [(k, a) for k in self.actions if (a := self._effective(k)) is not None and a.hidden]
        return [{"kind": k[0], "target": k[1], "reason": a.reason, "by": a.author, "at": a.at} for k, a in sorted(rows, key=lambda r: r[1].order)]

    def snapshot_state(self) -> dict[str, Any]:
        with self._lock:
            return {"actions": [[k[0], k[1], [[list(a.order), a.hidden, a.author, a.reason, a.at] for a in acts]]
                                for k, acts in self.actions.items()]}

    def restore_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.actions = {(kind, target): [Action(tuple(o), h, au, r, at) for o, h, au, r, at in acts]  # type: ignore[arg-type]
                            for kind, target, acts in state.get("actions", [])}


__all__ = ["ModerationView"]
