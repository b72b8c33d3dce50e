"""chat.send / chat.history / chat.read: a node's own conversations (trust `self`).

`chat.send` encrypts the message to the recipient's key, appends it to the log under
this node's key, then delivers it: pushed straight to the recipient if it is reachable
("direct"), else to another peer that will carry it on ("forwarded"), else it waits in
the log ("queued") and goes out with the first sync after the recipient returns. The
recipient's node answers with a `chat.message.delivered` receipt; `chat.read` adds a
`chat.message.read` receipt. Store-and-forward is the replicated log itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ulid import ULID

from hearthnet.bus.capability import CallContext, CapabilityDescriptor
from hearthnet.config import ChatConfig
from hearthnet.errors import HearthNetError
from hearthnet.events.types import CHAT_BODY_MAX, CHAT_RECEIPT_MAX, Event
from hearthnet.identity.keys import KeyPair
from hearthnet.bus.capability import Capabilities
from hearthnet.services.chat.crypto import seal, unseal
from hearthnet.services.chat.view import ChatView, Message

_NODE = {"type": "string", "pattern": "^ed25519:[A-Za-z0-9_-]{43}$"}
_CID = {"type": "string", "pattern": "^blake3:[0-9a-f]{64}$"}
ATTACHMENTS_MAX = 10
SEND_REQUEST = {"type": "object", "additionalProperties": False, "required": ["to", "body"], "properties": {
    "to": _NODE, "body": {"type": "string", "minLength": 1}, "attachments": {"type": "array", "items": _CID}}}
HISTORY_REQUEST = {"type": "object", "additionalProperties": False, "properties": {
    "peer": _NODE, "limit": {"type": "integer", "minimum": 1, "maximum": 1000}}}
READ_REQUEST = {"type": "object", "additionalProperties": False, "required": ["peer"], "properties": {"peer": _NODE}}

AppendEvent = Callable[[str, dict[str, Any]], Event]
PeerUrl = Callable[[str], "str | None"]  # a verified peer's URL by node id, None when not reachable now
Relays = Callable[[], "list[tuple[str, str]]"]  # (node id, URL) of every live peer
Push = Callable[[str], Awaitable[Any]]  # sync our log to the node at this URL


class ChatService:
    name = "chat"

    def __init__(self, config: ChatConfig, view: ChatView, kp: KeyPair, append_event: AppendEvent, *,
                 is_member: Callable[[str], bool], peer_url: PeerUrl, relays: Relays, push: Push) -> None:
        self.config, self.view, self.kp, self.append_event = config, view, kp, append_event
        self.is_member, self.peer_url, self.relays, self.push = is_member, peer_url, relays, push
        self._ack_lock = asyncio.Lock()

    def reachable(self, node_id: str) -> bool:
        return self.peer_url(node_id) is not None

    async def deliver(self, to: str) -> str:
        """The delivery policy: push our log to the recipient now ("direct"), else to a peer that will
        carry it on ("forwarded", with chat.store_and_forward), else leave it for the sync after the
        recipient returns ("queued")."""
        url = self.peer_url(to)
        if url is not None:
            try:
                await self.push(url)
                return "direct"
            except HearthNetError:
                pass
        if self.config.store_and_forward:
            for node_id, relay in self.relays():
                if node_id in (to, self.kp.node_id):
                    continue
                try:
                    await self.push(relay)
                    return "forwarded"
                except HearthNetError:
                    continue
        return "queued"

    def capabilities(self) -> Capabilities:
        return [
            (CapabilityDescriptor("chat.send", (1, 0), SEND_REQUEST, {"type": "object", "required": ["msg_id", "delivery"]}, max_concurrent=8,
                                  trust_required="self", timeout_seconds=60), self._send, None),
            (CapabilityDescriptor("chat.history", (1, 0), HISTORY_REQUEST, {"type": "object", "required": ["messages", "unread"]},
                                  max_concurrent=8, trust_required="self", timeout_seconds=30, idempotent=True), self._history, None),
            (CapabilityDescriptor("chat.read", (1, 0), READ_REQUEST, {"type": "object", "required": ["marked"]}, max_concurrent=8,
                                  trust_required="self", timeout_seconds=30), self._read, None),
        ]

    async def _send(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        to, text, attachments = body["to"], body["body"], body.get("attachments", [])
        if len(text) > CHAT_BODY_MAX:
            raise HearthNetError("payload_too_large", f"message is {len(text)} characters; at most {CHAT_BODY_MAX}", limit=CHAT_BODY_MAX)
        if len(attachments) > ATTACHMENTS_MAX:
            raise HearthNetError("payload_too_large", f"{len(attachments)} attachments; at most {ATTACHMENTS_MAX}", limit=ATTACHMENTS_MAX)
        if to == self.kp.node_id:
            raise HearthNetError("bad_request", "a message to this node itself")
        if not self.is_member(to):
            raise HearthNetError("not_member", f"{to[:24]}… is not a current member of this community")
        if not self.config.store_and_forward and not self.reachable(to):
            raise HearthNetError("partition", "the recipient is not reachable and chat.store_and_forward is off")
        msg_id = str(ULID())
        box = seal(self.kp, to, {"body": text, "attachments": attachments})
        ev = self.append_event("chat.message.sent", {"msg_id": msg_id, "to": to, "box": box})
        return {"msg_id": msg_id, "event_id": ev.event_id, "delivery": await self.deliver(to)}

    def _public(self, m: Message) -> dict[str, Any]:
        try:
            content = unseal(self.kp, m.peer(self.kp.node_id), m.box)
        except HearthNetError:
            content = {"body": None, "attachments": [], "error": "cannot be opened with this node's key"}
        return {"msg_id": m.msg_id, "from": m.sender, "to": m.to, "mine": m.sender == self.kp.node_id, "sent_at": m.sent_at,
                "delivered_at": m.delivered_at, "read_at": m.read_at, "body": content.get("body"),
                "attachments": list(content.get("attachments") or []), **({"error": content["error"]} if "error" in content else {})}

    async def _history(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        msgs = self.view.history(body.get("peer"), body.get("limit", 200))
        return {"messages": [self._public(m) for m in msgs], "unread": self.view.unread()}

    async def _read(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        ids = self.view.unread_from(body["peer"])
        event_ids = [self.append_event("chat.message.read", {"msg_ids": ids[i:i + CHAT_RECEIPT_MAX]}).event_id
                     for i in range(0, len(ids), CHAT_RECEIPT_MAX)]
        return {"marked": len(ids), "event_ids": event_ids}

    async def acknowledge(self) -> int:
        """Receipt every message to this node that has not been receipted yet (after sync brought it)."""
        async with self._ack_lock:
            ids = self.view.to_acknowledge()
            for i in range(0, len(ids), CHAT_RECEIPT_MAX):
                self.append_event("chat.message.delivered", {"msg_ids": ids[i:i + CHAT_RECEIPT_MAX]})
            return len(ids)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


__all__ = ["ChatService"]
