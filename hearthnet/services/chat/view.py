"""This node's conversations, rebuilt by replaying chat.message.* events.

Only messages this node sent or received are kept (everyone's log holds everyone's
boxes, but only the two parties can open them). Receipts count only when signed by
the message's recipient; a receipt that arrives before its message (sync order) waits
for it. The log has already refused events whose data do not match their chat schema.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any


from hearthnet.events.types import CHAT_SCHEMAS, Event


@dataclass
class Message:
    msg_id: str
    sender: str
    to: str
    box: str
    sent_at: str
    lamport: int
    delivered_at: str | None = None
    read_at: str | None = None

    def peer(self, me: str) -> str:
        return self.to if self.sender == me else self.sender


class ChatView:
    name = "chat"
    event_types = frozenset(CHAT_SCHEMAS)

    def __init__(self, node_id: str) -> None:
        self.me = node_id
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.messages: dict[str, Message] = {}
            self.early: dict[str, list[tuple[str, str, str]]] = {}  # msg id -> receipts (type, author, at) seen before it

    def apply(self, ev: Event) -> None:
        d = ev.data  # the log refused any chat event whose data does not match CHAT_SCHEMAS
        with self._lock:
            if ev.event_type == "chat.message.sent":
                if self.me not in (ev.author, d["to"]) or d["msg_id"] in self.messages:
                    return
                m = self.messages[d["msg_id"]] = Message(d["msg_id"], ev.author, d["to"], d["box"], ev.wall_clock, ev.lamport)
                for kind, author, at in self.early.pop(m.msg_id, []):
                    self._receipt(m, kind, author, at)
                return
            for mid in d["msg_ids"]:
                m = self.messages.get(mid)
                if m is None:
                    if len(self.early) < 100_000:
                        self.early.setdefault(mid, []).append((ev.event_type, ev.author, ev.wall_clock))
                    continue
                self._receipt(m, ev.event_type, ev.author, ev.wall_clock)

    @staticmethod
    def _receipt(m: Message, kind: str, author: str, at: str) -> None:
        if author != m.to:
            return  # only the recipient can say it arrived or was read
        if kind == "chat.message.delivered":
            m.delivered_at = m.delivered_at or at
        else:
            m.read_at = m.read_at or at
            m.delivered_at = m.delivered_at or at

    def history(self, peer: str | None = None, limit: int = 200) -> list[Message]:
        with self._lock:
            rows = [m for m in self.messages.values() if peer is None or m.peer(self.me) == peer]
        rows.sort(key=lambda m: (m.lamport, m.msg_id))
        return rows[-limit:]

    def unread(self) -> dict[str, int]:
        out: dict[str, int] = {}
        with self._lock:
            for m in self.messages.values():
                if m.to == self.me and m.read_at is None:
                    out[m.sender] = out.get(m.sender, 0) + 1
        return out

    def to_acknowledge(self) -> list[str]:
        """Messages to this node that it has not yet receipted as delivered."""
        with self._lock:
            return sorted(m.msg_id for m in self.messages.values() if m.to == self.me and m.delivered_at is None)

    def unread_from(self, peer: str) -> list[str]:
        with self._lock:
            return sorted(m.msg_id for m in self.messages.values() if m.to == self.me and m.sender == peer and m.read_at is None)

    def pending_recipients(self) -> set[str]:
        """Nodes this node wrote to that have not confirmed delivery yet."""
        with self._lock:
            return {m.to for m in self.messages.values() if m.sender == self.me and m.delivered_at is None}

    def snapshot_state(self) -> dict[str, Any]:
        with self._lock:
            return {"messages": [asdict(m) for m in self.messages.values()], "early": self.early}

    def restore_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.messages = {r["msg_id"]: Message(**r) for r in state.get("messages", [])}
            self.early = {k: [tuple(x) for x in v] for k, v in state.get("early", {}).items()}  # type: ignore[misc]


__all__ = ["ChatView", "Message"]
