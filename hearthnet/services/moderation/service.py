"""moderation.hide / moderation.unhide (the node's own trusted key) and moderation.list (members).

Hiding is a signed event with a reason, appended under this node's key; it counts only
while this node is trusted, so a node below that level is told `forbidden` up front.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hearthnet.bus.capability import CallContext, CapabilityDescriptor
from hearthnet.errors import HearthNetError
from hearthnet.events.types import Event
from hearthnet.bus.capability import Capabilities
from hearthnet.services.moderation.view import ModerationView
from hearthnet.types import TRUST_ORDER

KINDS = ["market.post", "file"]
ACT_REQUEST = {"type": "object", "additionalProperties": False, "required": ["kind", "target", "reason"], "properties": {
    "kind": {"enum": KINDS}, "target": {"type": "string", "minLength": 1, "maxLength": 80}, "reason": {"type": "string", "minLength": 1}}}
ACT_RESPONSE = {"type": "object", "required": ["kind", "target", "hidden", "event_id"]}
REASON_MAX = 500

AppendEvent = Callable[[str, dict[str, Any]], Event]


class ModerationService:
    name = "moderation"

    def __init__(self, view: ModerationView, append_event: AppendEvent, node_id: str, exists: Callable[[str, str], bool]) -> None:
        self.view, self.append_event, self.node_id, self.exists = view, append_event, node_id, exists

    def capabilities(self) -> Capabilities:
        return [
            (CapabilityDescriptor("moderation.hide", (1, 0), ACT_REQUEST, ACT_RESPONSE, max_concurrent=4, trust_required="self", timeout_seconds=30),
             lambda body, ctx: self._act(body, hide=True), None),
            (CapabilityDescriptor("moderation.unhide", (1, 0), ACT_REQUEST, ACT_RESPONSE, max_concurrent=4, trust_required="self", timeout_seconds=30),
             lambda body, ctx: self._act(body, hide=False), None),
            (CapabilityDescriptor("moderation.list", (1, 0), {"type": "object", "additionalProperties": False}, {"type": "object", "required": ["hidden"]},
                                  max_concurrent=8, timeout_seconds=30, idempotent=True), self._list, None),
        ]

    async def _act(self, body: dict[str, Any], *, hide: bool) -> dict[str, Any]:
        kind, target, reason = body["kind"], body["target"], body["reason"].strip()
        if not reason:
            raise HearthNetError("bad_request", "a reason is required")
        if len(reason) > REASON_MAX:
            raise HearthNetError("payload_too_large", f"reason is {len(reason)} characters; at most {REASON_MAX}", limit=REASON_MAX)
        if TRUST_ORDER.get(self.view.level_of(self.node_id), 0) < TRUST_ORDER["trusted"]:
            raise HearthNetError("forbidden", "only trusted members and anchors can hide or unhide; this node is not one")
        if not self.exists(kind, target):
            raise HearthNetError("not_found", f"no {kind} {target!r} known here")
        if self.view.is_hidden(kind, target) == hide:
            return {"kind": kind, "target": target, "hidden": hide, "event_id": None}
        ev = self.append_event("moderation.item.hidden" if hide else "moderation.item.unhidden", {"kind": kind, "target": target, "reason": reason})
        return {"kind": kind, "target": target, "hidden": hide, "event_id": ev.event_id}

    async def _list(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        return {"hidden": self.view.hidden()}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


__all__ = ["ModerationService"]
