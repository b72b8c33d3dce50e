"""Onboarding and trust on the running node: issue invites, admit their holders, sign membership changes.

Capabilities (all trust `self`: they sign with this node's key, as its operator asks):
`community.invite`, `community.promote`, `community.demote`, `community.revoke`.
Admission is not a capability: the invitee is not a member yet, so it redeems on the
transport's `/community/v1/redeem` endpoint, which calls `redeem()` here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hearthnet import clock
from hearthnet.bus.capability import CallContext, CapabilityDescriptor
from hearthnet.identity.invite import Invite, RedeemedInvites, make_invite
from hearthnet.errors import HearthNetError
from hearthnet.events import membership as M
from hearthnet.events.log import EventLog
from hearthnet.events.types import Event
from hearthnet.identity.keys import KeyPair
from hearthnet.bus.capability import Capabilities

_NODE = {"type": "string", "pattern": "^ed25519:[A-Za-z0-9_-]{43}$"}
_LEVEL = {"enum": ["member", "trusted", "anchor"]}
INVITE_REQUEST = {"type": "object", "additionalProperties": False, "required": ["node_id"], "properties": {
    "node_id": _NODE, "level": _LEVEL, "ttl_seconds": {"type": "integer"}, "single_use": {"type": "boolean"},
    "endpoints": {"type": "array", "items": {"type": "string", "maxLength": 200}, "minItems": 1, "maxItems": 8}}}
LEVEL_REQUEST = {"type": "object", "additionalProperties": False, "required": ["node_id", "level"], "properties": {"node_id": _NODE, "level": _LEVEL}}
REVOKE_REQUEST = {"type": "object", "additionalProperties": False, "required": ["node_id"], "properties": {
    "node_id": _NODE, "reason": {"type": "string", "maxLength": 500}}}
CHANGE_RESPONSE = {"type": "object", "required": ["event_id", "effective", "signatures", "needed"]}


class CommunityService:
    name = "community"

    def __init__(self, log: EventLog, kp: KeyPair, endpoints: Callable[[], list[str]], redeemed: RedeemedInvites,
                 author_seq: Callable[[str], int]) -> None:
        self.log, self.kp, self.endpoints, self.redeemed, self.author_seq = log, kp, endpoints, redeemed, author_seq

    def capabilities(self) -> Capabilities:
        return [
            (CapabilityDescriptor("community.invite", (1, 0), INVITE_REQUEST, {"type": "object", "required": ["invite", "invite_id"]},
                                  max_concurrent=4, trust_required="self", timeout_seconds=30), self._invite, None),
            (CapabilityDescriptor("community.promote", (1, 0), LEVEL_REQUEST, CHANGE_RESPONSE, max_concurrent=4, trust_required="self",
                                  timeout_seconds=30), lambda b, ctx: self._change("community.member.promoted", b), None),
            (CapabilityDescriptor("community.demote", (1, 0), LEVEL_REQUEST, CHANGE_RESPONSE, max_concurrent=4, trust_required="self",
                                  timeout_seconds=30), lambda b, ctx: self._change("community.member.demoted", b), None),
            (CapabilityDescriptor("community.revoke", (1, 0), REVOKE_REQUEST, CHANGE_RESPONSE, max_concurrent=4, trust_required="self",
                                  timeout_seconds=30), self._revoke, None),
        ]

    def _may(self, event_type: str, data: dict[str, Any]) -> None:
        probe = Event(1, "", self.log.community_id, self.kp.node_id, 0, None, 0, "", event_type, data, "", "", "")
        if not M.may_author(self.log.membership, probe):
            raise HearthNetError("forbidden", f"this node (level {self.log.membership.level_of(self.kp.node_id)}) may not sign that "
                                 f"{event_type.rsplit('.', 1)[-1]} under the community's policy")

    async def _invite(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        self.log.refresh()
        st = self.log.membership
        node_id, level = body["node_id"], body.get("level", "member")
        if node_id in st.revoked:
            raise HearthNetError("revoked", f"{node_id[:24]}… was revoked; a revoked box joins again with a new key")
        if st.is_member(node_id):
            raise HearthNetError("already_exists", f"{node_id[:24]}… is a member already")
        self._may("community.member.joined", {"node_id": node_id, "level": level})
        inv, text = make_invite(self.kp, community_id=self.log.community_id, community_name=st.name or "", invitee=node_id, level=level,
                                endpoints=body.get("endpoints") or self.endpoints(), ttl_seconds=body.get("ttl_seconds", 86400),
                                single_use=body.get("single_use", True))
        self.log.append_local("community.member.invited", {"invite_id": inv.invite_id, "node_id": node_id, "level": level,
                                                           "expires_at": inv.expires_at, "single_use": inv.single_use}, self.kp)
        return {"invite": text, "invite_id": inv.invite_id, "expires_at": inv.expires_at, "endpoints": inv.endpoints}

    def redeem(self, inv: Invite, caller: str, display_name: str) -> dict[str, Any]:
        """Admit the invite's holder (the caller, already authenticated by its signature). Runs in a thread."""
        if inv.community_id != self.log.community_id:
            raise HearthNetError("wrong_community", "this invite is for another community")
        if inv.inviter != self.kp.node_id:
            raise HearthNetError("forbidden", "an invite is redeemed only at the node that issued it (one of the invite's endpoints)")
        if inv.invitee != caller:
            raise HearthNetError("forbidden", "this invite is bound to another node id")
        if inv.is_expired():
            raise HearthNetError("expired", f"this invite expired at {inv.expires_at}")
        self.log.refresh()
        st = self.log.membership
        if caller in st.revoked:
            raise HearthNetError("revoked", "this node id was revoked; a revoked box joins again with a new key")
        if inv.single_use and not self.redeemed.claim(inv):
            if st.is_member(caller):
                return self._joined(caller, None, already=True)
            raise HearthNetError("conflict", "this invite was redeemed already")
        try:
            if st.is_member(caller):
                return self._joined(caller, None, already=True)
            data = {"node_id": caller, "level": inv.level, "display_name": display_name[:120], "invite_id": inv.invite_id}
            self._may("community.member.joined", data)
            ev = self.log.append_local("community.member.joined", data, self.kp)
        except BaseException:
            if inv.single_use:
                self.redeemed.release(inv)  # the invite stays usable when admission failed
            raise
        return self._joined(caller, ev, already=False)

    def _joined(self, node_id: str, ev: Event | None, *, already: bool) -> dict[str, Any]:
        st = self.log.membership
        member = st.is_member(node_id)
        pending = st.pending.get(M.proposal_key(ev)) if ev is not None and not member else None
        return {"community_id": self.log.community_id, "member": member, "level": st.level_of(node_id), "already": already,
                "event_id": ev.event_id if ev else None, "signatures": len(pending) if pending else None,
                "needed": int(st.policy.get("min_signatures_to_invite", 1))}

    async def _change(self, event_type: str, body: dict[str, Any]) -> dict[str, Any]:
        data = {"node_id": body["node_id"], "level": body["level"]}
        return self._sign(event_type, data)

    async def _revoke(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        # after_seq: the target's events this node holds stay valid everywhere; anything later is void.
        data = {"node_id": body["node_id"], "after_seq": self.author_seq(body["node_id"]), "reason": body.get("reason", "")}
        return self._sign("community.member.revoked", data)

    def _sign(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        self.log.refresh()
        if not self.log.membership.is_member(data["node_id"]):
            raise HearthNetError("not_found", f"{data['node_id'][:24]}… is not a current member")
        self._may(event_type, data)
        ev = self.log.append_local(event_type, data, self.kp)
        st = self.log.membership
        key = M.proposal_key(ev)
        pending = st.pending.get(key)
        return {"event_id": ev.event_id, "effective": pending is None, "signatures": len(pending) if pending else None,
                "needed": M.threshold(st, ev), "at": clock.iso()}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.redeemed.close()


__all__ = ["CommunityService"]
