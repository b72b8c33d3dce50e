"""Communities: creation (genesis), policy, members, and the signed community manifest.

The log is the truth about a community; the community manifest is a signed
summary of it that any node serves (also to non-members, so they can join). It
carries the genesis envelope, so a reader checks the community id and root key
from the root's own signature, then checks the issuer is a current member.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hearthnet import clock
from hearthnet import constants as C
from hearthnet.errors import HearthNetError, validation_message
from hearthnet.events.membership import MembershipState, derive_community_id, genesis_ok
from hearthnet.events.types import Event, PolicyData
from hearthnet.identity.envelope import Signed, open_signed, seal
from hearthnet.identity.keys import KeyPair

COMMUNITY_MANIFEST_TTL_SECONDS = 3600


def community_name(name: str) -> str:
    """The name a new community is created with (trimmed), or bad_request."""
    name = name.strip()
    if not name or len(name) > 120:
        raise HearthNetError("bad_request", "community name must be 1-120 characters")
    return name


def genesis_data(name: str, root_key: str, policy: PolicyData | None = None) -> tuple[str, dict[str, Any]]:
    """(community_id, data of the `community.created` event) for a new community."""
    name = community_name(name)
    created_at = clock.iso()
    data = {
        "name": name,
        "root_key": root_key,
        "created_at": created_at,
        "policy": (policy or PolicyData()).model_dump(),
    }
    return derive_community_id(name, root_key, created_at), data


class MemberEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    node_id: str
    level: Literal["member", "trusted", "anchor"]
    added_at: str
    added_by: str
    display_name: str = ""


class RevokedEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    node_id: str
    after_seq: int
    revoked_at: str
    revoked_by: str
    reason: str = ""


class CommunityManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1] = 1
    community_id: str
    name: str
    root_key: str
    created_at: str
    policy: PolicyData
    members: list[MemberEntry]
    revoked: list[RevokedEntry]
    head_lamport: int = Field(ge=0)
    genesis: dict[str, str]  # the genesis event's envelope, byte for byte
    issuer: str
    issued_at: str
    expires_at: str

    def is_member(self, node_id: str) -> bool:
        return any(m.node_id == node_id for m in self.members) and not self.is_revoked(node_id)

    def level_of(self, node_id: str) -> str:
        if not self.is_member(node_id):
            return "unknown"
        return next(m.level for m in self.members if m.node_id == node_id)

    def is_revoked(self, node_id: str) -> bool:
        return any(r.node_id == node_id for r in self.revoked)

    def is_expired(self, now: float | None = None) -> bool:
        return clock.parse_iso(self.expires_at) < (clock.now() if now is None else now)


def build_community_manifest(state: MembershipState, head_lamport: int, issuer: KeyPair) -> Signed:
    if state.genesis is None:
        raise HearthNetError("not_initialised", "the community's genesis event is not in the log yet")
    g = state.genesis
    now = clock.now()
    body = {
        "schema_version": 1,
        "community_id": state.community_id,
        "name": g.data["name"],
        "root_key": g.data["root_key"],
        "created_at": g.data["created_at"],
        "policy": state.policy,
        "members": [
            {"node_id": m.node_id, "level": m.level, "added_at": m.added_at, "added_by": m.added_by, "display_name": m.display_name}
            for m in sorted(state.members.values(), key=lambda m: m.node_id)
        ],
        "revoked": [
            {"node_id": r.node_id, "after_seq": r.after_seq, "revoked_at": r.revoked_at, "revoked_by": r.revoked_by, "reason": r.reason}
            for r in sorted(state.revoked.values(), key=lambda r: r.node_id)
        ],
        "head_lamport": head_lamport,
        "genesis": g.envelope(),
        "issuer": issuer.node_id,
        "issued_at": clock.iso(now),
        "expires_at": clock.iso(now + COMMUNITY_MANIFEST_TTL_SECONDS),
    }
    return seal(body, issuer, C.SIGN_DOMAIN_COMMUNITY_MANIFEST)


def verify_community_manifest(envelope: Any, *, expected_community: str | None = None, now: float | None = None) -> tuple[CommunityManifest, Event]:
    """Verify a community manifest envelope; returns (manifest, genesis event).

    Checks: canonical payload and issuer signature, schema, the genesis event's
    root signature and derived community id, the issuer's membership, expiry.
    """
    from hearthnet.events.log import verify_event_envelope  # the one event verifier

    obj, _ = open_signed(envelope, C.SIGN_DOMAIN_COMMUNITY_MANIFEST, "issuer", what="community manifest")
    try:
        cm = CommunityManifest.model_validate(obj)
    except ValidationError as exc:
        raise HearthNetError("bad_request", f"community manifest: {validation_message(exc)}") from None
    if expected_community is not None and cm.community_id != expected_community:
        raise HearthNetError("wrong_community", f"manifest is for community {cm.community_id[:16]}, expected {expected_community[:16]}")
    genesis = verify_event_envelope(cm.genesis, cm.community_id)
    if not genesis_ok(genesis, cm.community_id):
        raise HearthNetError("bad_request", "community manifest: genesis event does not derive the community id")
    g = genesis.data
    if (g["name"], g["root_key"], g["created_at"]) != (cm.name, cm.root_key, cm.created_at):
        raise HearthNetError("bad_request", "community manifest: name/root/created_at differ from the genesis event")
    if cm.issuer != cm.root_key and not cm.is_member(cm.issuer):
        raise HearthNetError("not_member", "community manifest issued by a node that is not a member")
    if cm.is_expired(now):
        raise HearthNetError("expired", f"community manifest expired at {cm.expires_at}")
    return cm, genesis


__all__ = [
    "COMMUNITY_MANIFEST_TTL_SECONDS",
    "CommunityManifest",
    "MemberEntry",
    "RevokedEntry",
    "build_community_manifest",
    "genesis_data",
    "verify_community_manifest",
]
