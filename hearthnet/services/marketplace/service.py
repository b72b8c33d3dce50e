"""market.post / market.list / market.update / market.expire.

Posting, editing and ending a post are the author's own node's business (trust `self`):
the event is signed by that node's key, and the view honours edits only from the
author. Listing is served by any member from its replicated view. The node sweeps its
own posts past their expiry into `market.post.expired` events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ulid import ULID

from hearthnet import clock
from hearthnet.bus.capability import CallContext, CapabilityDescriptor
from hearthnet.config import MarketConfig
from hearthnet.errors import HearthNetError
from hearthnet.events.types import MARKET_BODY_MAX, MARKET_TAGS_MAX, MARKET_TITLE_MAX, Event
from hearthnet.bus.capability import Capabilities
from hearthnet.services.marketplace.view import MarketView

CATEGORIES = ["offer", "request", "info", "emergency"]
LIST_MAX = 200
_ID = {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{26}$"}
_TAGS = {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,31}$"}}
# Lengths are checked by the service (payload_too_large with the limit), not the schema.
POST_REQUEST = {"type": "object", "additionalProperties": False, "required": ["category", "title"], "properties": {
    "category": {"enum": CATEGORIES}, "title": {"type": "string", "minLength": 1}, "body": {"type": "string"}, "tags": _TAGS,
    "ttl_seconds": {"type": "integer", "minimum": 60}}}
UPDATE_REQUEST = {"type": "object", "additionalProperties": False, "required": ["post_id"], "properties": {
    "post_id": _ID, "title": {"type": "string", "minLength": 1}, "body": {"type": "string"}, "tags": _TAGS,
    "ttl_seconds": {"type": "integer", "minimum": 60}}}
EXPIRE_REQUEST = {"type": "object", "additionalProperties": False, "required": ["post_id"], "properties": {"post_id": _ID}}
LIST_REQUEST = {"type": "object", "additionalProperties": False, "properties": {
    "category": {"enum": CATEGORIES}, "tag": {"type": "string"}, "query": {"type": "string", "maxLength": 200},
    "author": {"type": "string"}, "include_expired": {"type": "boolean"}, "limit": {"type": "integer", "minimum": 1, "maximum": LIST_MAX}}}
POST_RESPONSE = {"type": "object", "required": ["post_id", "event_id", "expires_at"]}
LIST_RESPONSE = {"type": "object", "required": ["posts"], "properties": {"posts": {"type": "array"}}}

AppendEvent = Callable[[str, dict[str, Any]], Event]


class MarketService:
    name = "market"

    def __init__(self, config: MarketConfig, view: MarketView, append_event: AppendEvent, node_id: str,
                 hidden: Callable[[str, str], bool] | None = None) -> None:
        self.config, self.view, self.append_event, self.node_id = config, view, append_event, node_id
        self.hidden = hidden or (lambda kind, target: False)  # moderation: hidden posts leave the listing

    def capabilities(self) -> Capabilities:
        return [
            (CapabilityDescriptor("market.post", (1, 0), POST_REQUEST, POST_RESPONSE, max_concurrent=8, trust_required="self", timeout_seconds=30),
             self._post, None),
            (CapabilityDescriptor("market.update", (1, 0), UPDATE_REQUEST, POST_RESPONSE, max_concurrent=8, trust_required="self", timeout_seconds=30),
             self._update, None),
            (CapabilityDescriptor("market.expire", (1, 0), EXPIRE_REQUEST, {"type": "object"}, max_concurrent=8, trust_required="self",
                                  timeout_seconds=30), self._expire, None),
            (CapabilityDescriptor("market.list", (1, 0), LIST_REQUEST, LIST_RESPONSE, max_concurrent=16, timeout_seconds=30, idempotent=True),
             self._list, None),
        ]

    def _ttl(self, body: dict[str, Any]) -> str:
        ttl = body.get("ttl_seconds", self.config.default_ttl_seconds)
        if ttl > self.config.max_ttl_seconds:
            raise HearthNetError("bad_request", f"ttl_seconds {ttl} is longer than this community allows ({self.config.max_ttl_seconds})")
        return clock.iso(clock.now() + ttl)

    @staticmethod
    def _sizes(body: dict[str, Any]) -> None:
        for key, limit in (("title", MARKET_TITLE_MAX), ("body", MARKET_BODY_MAX)):
            if len(body.get(key) or "") > limit:
                raise HearthNetError("payload_too_large", f"{key} is {len(body[key])} characters; a post allows {limit}", limit=limit)
        if len(body.get("tags") or []) > MARKET_TAGS_MAX:
            raise HearthNetError("payload_too_large", f"{len(body['tags'])} tags; a post allows {MARKET_TAGS_MAX}", limit=MARKET_TAGS_MAX)

    def _own(self, post_id: str) -> Any:
        post = self.view.get(post_id)
        if post is None:
            raise HearthNetError("not_found", f"no post {post_id}")
        if post.author != self.node_id:
            raise HearthNetError("forbidden", f"post {post_id} belongs to another node; only its author may change it")
        if post.expired is not None:
            raise HearthNetError("conflict", f"post {post_id} has expired ({post.expired})")
        return post

    async def _post(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        self._sizes(body)
        data = {"post_id": str(ULID()), "category": body["category"], "title": body["title"], "body": body.get("body", ""),
                "tags": sorted(set(body.get("tags", []))), "expires_at": self._ttl(body)}
        ev = self.append_event("market.post.created", data)
        return {"post_id": data["post_id"], "event_id": ev.event_id, "expires_at": data["expires_at"]}

    async def _update(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        self._sizes(body)
        post = self._own(body["post_id"])
        data: dict[str, Any] = {"post_id": post.post_id}
        for k in ("title", "body"):
            if k in body:
                data[k] = body[k]
        if "tags" in body:
            data["tags"] = sorted(set(body["tags"]))
        if "ttl_seconds" in body:
            data["expires_at"] = self._ttl(body)
        ev = self.append_event("market.post.updated", data)
        return {"post_id": post.post_id, "event_id": ev.event_id, "expires_at": data.get("expires_at", post.expires_at)}

    async def _expire(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        post = self._own(body["post_id"])
        ev = self.append_event("market.post.expired", {"post_id": post.post_id, "reason": "author"})
        return {"post_id": post.post_id, "event_id": ev.event_id}

    async def _list(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        return {"posts": self.view.query(category=body.get("category"), tag=body.get("tag"), text=body.get("query"), author=body.get("author"),
                                         include_expired=body.get("include_expired", False), limit=body.get("limit", 50),
                                         skip=lambda post_id: self.hidden("market.post", post_id))}

    def sweep(self) -> list[str]:
        """Close this node's own posts that are past their expiry (one event each)."""
        done = []
        for pid in self.view.due(self.node_id, clock.now()):
            self.append_event("market.post.expired", {"post_id": pid, "reason": "ttl"})
            done.append(pid)
        return done

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


__all__ = ["MarketService"]
