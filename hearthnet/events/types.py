"""Event types, the Event record, and the schemas of event payloads.

An event travels as a signed envelope (hearthnet.identity.envelope) whose
payload is the canonical JSON of:

    {"schema_version": 1, "event_id": ULID, "community_id": ..., "author": full node id,
     "seq": n (author's 1, 2, 3, ...), "prev": hash of the author's event n-1 or null,
     "lamport": L, "wall_clock": "...Z", "event_type": one of EVENT_TYPES, "data": {...}}

The event's hash is blake3 over the payload bytes; `prev` chains an author's
events so a receiver sees gaps and forks. docs/contract.md has the data schema of
each type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hearthnet.errors import HearthNetError, validation_message

EventType = Literal[
    "community.created",
    "community.member.invited",
    "community.member.joined",
    "community.member.revoked",
    "community.member.promoted",
    "community.member.demoted",
    "community.policy.updated",
    "node.manifest.updated",
    "market.post.created",
    "market.post.updated",
    "market.post.expired",
    "chat.message.sent",
    "chat.message.delivered",
    "chat.message.read",
    "file.cid.advertised",
    "file.cid.unpinned",
    "rag.document.ingested",
    "federation.peer.added",
    "federation.peer.removed",
    "moderation.item.hidden",
    "moderation.item.unhidden",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

# Events that change who may write to the log. The log re-derives membership when
# one of them arrives (hearthnet.events.membership).
MEMBERSHIP_TYPES: frozenset[str] = frozenset(
    {
        "community.created",
        "community.member.joined",
        "community.member.revoked",
        "community.member.promoted",
        "community.member.demoted",
        "community.policy.updated",
    }
)

# Status of a stored event. Only VALID events reach views and peers.
VALID, PARKED, VOID, FORKED = 0, 1, 2, 3
STATUS_NAMES = {VALID: "valid", PARKED: "parked", VOID: "void", FORKED: "forked"}


@dataclass(frozen=True, slots=True)
class Event:
    schema_version: int
    event_id: str
    community_id: str
    author: str
    seq: int
    prev: str | None
    lamport: int
    wall_clock: str
    event_type: str
    data: dict[str, Any]
    # What was signed and how: kept byte for byte.
    payload: str
    sig: str
    hash: str

    @property
    def order_key(self) -> tuple[int, str, str]:
        """Total order of the log: (lamport, author, event_id)."""
        return (self.lamport, self.author, self.event_id)

    def envelope(self) -> dict[str, str]:
        return {"payload": self.payload, "sig": self.sig}


# --- payload schemas -------------------------------------------------------------

_ULID = r"^[0-9A-HJKMNP-TV-Z]{26}$"
_NODE_ID = r"^ed25519:[A-Za-z0-9_-]{43}$"
_HASH = r"^blake3:[0-9a-f]{64}$"
_TS = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EventPayload(_Strict):
    schema_version: Literal[1]
    event_id: str = Field(pattern=_ULID)
    community_id: str = Field(min_length=8, max_length=64)
    author: str = Field(pattern=_NODE_ID)
    seq: int = Field(ge=1)
    prev: str | None = Field(pattern=_HASH)
    lamport: int = Field(ge=1, le=2**53 - 1)
    wall_clock: str = Field(pattern=_TS)
    event_type: EventType
    data: dict[str, Any]


class PolicyData(_Strict):
    """Community policy (trust rules). Co-signing thresholds are enforced by the invite/trust issue."""

    min_signatures_to_invite: int = Field(1, ge=1)
    min_signatures_to_promote: int = Field(1, ge=1)
    min_signatures_to_demote: int = Field(1, ge=1)
    min_signatures_to_revoke: int = Field(1, ge=1)
    default_member_can_invite: bool = False


class CreatedData(_Strict):
    name: str = Field(min_length=1, max_length=120)
    root_key: str = Field(pattern=_NODE_ID)
    created_at: str = Field(pattern=_TS)
    policy: PolicyData


class JoinedData(_Strict):
    node_id: str = Field(pattern=_NODE_ID)
    level: Literal["member", "trusted", "anchor"] = "member"
    display_name: str = Field("", max_length=120)
    invite_id: str | None = Field(None, pattern=_ULID)  # set when an invite was redeemed


class InvitedData(_Strict):
    """An invite was issued (a record for the community; the join is what admits)."""

    invite_id: str = Field(pattern=_ULID)
    node_id: str = Field(pattern=_NODE_ID)
    level: Literal["member", "trusted", "anchor"]
    expires_at: str = Field(pattern=_TS)
    single_use: bool


class RevokedData(_Strict):
    node_id: str = Field(pattern=_NODE_ID)
    # The revoked author's events with seq <= after_seq stay valid everywhere: they
    # are the ones the revoker had seen. Later ones are void.
    after_seq: int = Field(ge=0)
    reason: str = Field("", max_length=500)


class LevelData(_Strict):
    node_id: str = Field(pattern=_NODE_ID)
    level: Literal["member", "trusted", "anchor"]


class PolicyUpdatedData(_Strict):
    policy: PolicyData


class RagIngestedData(_Strict):
    corpus: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    doc_cid: str = Field(pattern=r"^blake3:[0-9a-f]{64}$")
    title: str = Field(max_length=300)
    language: str = Field(min_length=1, max_length=35)
    kind: Literal["pdf", "markdown", "text"]
    bytes: int = Field(ge=0)
    chunks: int = Field(ge=1)
    tokens: int = Field(ge=0)
    embedding_model: str = Field(min_length=1, max_length=120)


_TAG = r"^[a-z0-9][a-z0-9_-]{0,31}$"
MARKET_TITLE_MAX, MARKET_BODY_MAX, MARKET_TAGS_MAX = 200, 4000, 10


class MarketPostData(_Strict):
    post_id: str = Field(pattern=_ULID)
    category: Literal["offer", "request", "info", "emergency"]
    title: str = Field(min_length=1, max_length=MARKET_TITLE_MAX)
    body: str = Field("", max_length=MARKET_BODY_MAX)
    tags: list[Annotated[str, Field(pattern=_TAG)]] = Field(default_factory=list, max_length=MARKET_TAGS_MAX)
    expires_at: str = Field(pattern=_TS)


class MarketUpdateData(_Strict):
    post_id: str = Field(pattern=_ULID)
    title: str | None = Field(None, min_length=1, max_length=MARKET_TITLE_MAX)
    body: str | None = Field(None, max_length=MARKET_BODY_MAX)
    tags: list[Annotated[str, Field(pattern=_TAG)]] | None = Field(None, max_length=MARKET_TAGS_MAX)
    expires_at: str | None = Field(None, pattern=_TS)


class MarketExpiredData(_Strict):
    post_id: str = Field(pattern=_ULID)
    reason: Literal["author", "ttl"]


class FileAdvertisedData(_Strict):
    cid: str = Field(pattern=_HASH)
    size_bytes: int = Field(ge=0)
    filename: str | None = Field(None, max_length=255)  # a label for people, never a path
    mime_type: str | None = Field(None, max_length=127)


class FileUnpinnedData(_Strict):
    cid: str = Field(pattern=_HASH)


CHAT_BODY_MAX, CHAT_BOX_MAX, CHAT_RECEIPT_MAX = 4000, 24000, 200


class ChatSentData(_Strict):
    msg_id: str = Field(pattern=_ULID)
    to: str = Field(pattern=_NODE_ID)
    box: str = Field(min_length=1, max_length=CHAT_BOX_MAX)  # NaCl box of {body, attachments}, base64url


class ChatReceiptData(_Strict):
    msg_ids: list[Annotated[str, Field(pattern=_ULID)]] = Field(min_length=1, max_length=CHAT_RECEIPT_MAX)


CHAT_SCHEMAS: dict[str, type[_Strict]] = {
    "chat.message.sent": ChatSentData,
    "chat.message.delivered": ChatReceiptData,
    "chat.message.read": ChatReceiptData,
}


class ModerationData(_Strict):
    """Hide or unhide a post or a file advert: honoured while its author is trusted (or anchor)."""

    kind: Literal["market.post", "file"]
    target: str = Field(min_length=1, max_length=80)  # a post id or a blob CID
    reason: str = Field(min_length=1, max_length=500)


MARKET_SCHEMAS: dict[str, type[_Strict]] = {
    "market.post.created": MarketPostData,
    "market.post.updated": MarketUpdateData,
    "market.post.expired": MarketExpiredData,
}

DATA_SCHEMAS: dict[str, type[_Strict]] = {
    "community.created": CreatedData,
    "rag.document.ingested": RagIngestedData,
    "file.cid.advertised": FileAdvertisedData,
    "file.cid.unpinned": FileUnpinnedData,
    "moderation.item.hidden": ModerationData,
    "moderation.item.unhidden": ModerationData,
    "community.member.joined": JoinedData,
    "community.member.invited": InvitedData,
    "community.member.revoked": RevokedData,
    "community.member.promoted": LevelData,
    "community.member.demoted": LevelData,
    "community.policy.updated": PolicyUpdatedData,
    **MARKET_SCHEMAS,
    **CHAT_SCHEMAS,
}


def check_payload(obj: dict[str, Any]) -> EventPayload:
    """Validate an event payload and its type's data. Raises event_invalid with the failing path."""
    try:
        p = EventPayload.model_validate(obj)
    except ValidationError as exc:
        raise HearthNetError("event_invalid", f"event payload: {validation_message(exc)}") from None
    check_data(p.event_type, p.data)
    if (p.seq == 1) != (p.prev is None):
        raise HearthNetError("event_invalid", "event payload: prev must be null exactly when seq is 1")
    return p


def check_data(event_type: str, data: dict[str, Any]) -> None:
    schema = DATA_SCHEMAS.get(event_type)
    if schema is None:
        return
    try:
        schema.model_validate(data)
    except ValidationError as exc:
        raise HearthNetError("event_invalid", f"{event_type} data: {validation_message(exc)}") from None


__all__ = [
    "DATA_SCHEMAS",
    "EVENT_TYPES",
    "FORKED",
    "MEMBERSHIP_TYPES",
    "PARKED",
    "STATUS_NAMES",
    "VALID",
    "VOID",
    "CreatedData",
    "Event",
    "EventPayload",
    "FileAdvertisedData",
    "FileUnpinnedData",
    "EventType",
    "JoinedData",
    "LevelData",
    "ModerationData",
    "PolicyData",
    "RagIngestedData",
    "RevokedData",
    "check_data",
    "check_payload",
]
