"""Who may write to a community's log, derived from the log itself.

Rules (docs/contract.md, "Membership"):
- The genesis event `community.created` is authored by the root key it names,
  has seq 1, and the community id is derived from its data. Nothing is valid
  before it is known.
- An author's events are valid once a valid `community.member.joined` for it
  exists (the root is always a member, level "anchor"). Until then they are
  *parked*, not rejected, so every node ends with the same log.
- A revocation names `after_seq`: the revoked author's events up to that
  sequence number (the ones the revoker had seen) stay valid everywhere; later
  ones are *void*. Revocation is final for a node id.
- A fork (two events by one author with the same seq, or an event whose `prev`
  does not match its predecessor) excludes that author's events from the fork
  point on: they are kept as evidence, marked *forked*, and applied by no view.
- Membership events change membership only when their author may sign them at
  their position in the log order (`may_author`), and only once the policy's
  number of distinct signers has signed the same change (`proposal_key`): the
  first event is the proposal, the same change by other signers co-signs it.

`derive()` is a pure function of the stored events, so every node that holds the
same events computes the same state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterable

import blake3

from hearthnet.events.types import FORKED, PARKED, VALID, VOID, Event
from hearthnet.identity.canonical import b64u_encode, canonical_json
from hearthnet.types import TRUST_ORDER


def derive_community_id(name: str, root_key: str, created_at: str) -> str:
    """The community id: base64url(blake3(canonical {name, root_key, created_at}))."""
    facts = {"name": name, "root_key": root_key, "created_at": created_at}
    return b64u_encode(blake3.blake3(canonical_json(facts)).digest())


@dataclass(slots=True)
class MemberInfo:
    node_id: str
    level: str
    added_at: str
    added_by: str
    display_name: str = ""


@dataclass(slots=True)
class RevokedInfo:
    node_id: str
    after_seq: int
    revoked_at: str
    revoked_by: str
    reason: str = ""


@dataclass(slots=True)
class MembershipState:
    community_id: str
    genesis: Event | None = None
    members: dict[str, MemberInfo] = field(default_factory=dict)
    revoked: dict[str, RevokedInfo] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    pending: dict[tuple[str, ...], list[str]] = field(default_factory=dict)  # proposals short of signatures -> signers so far

    @property
    def root_key(self) -> str | None:
        return self.genesis.data["root_key"] if self.genesis else None

    @property
    def name(self) -> str | None:
        return self.genesis.data["name"] if self.genesis else None

    def is_member(self, node_id: str) -> bool:
        """A current, unrevoked member (the root included)."""
        return node_id in self.members and node_id not in self.revoked

    def level_of(self, node_id: str) -> str:
        if not self.is_member(node_id):
            return "unknown"
        return self.members[node_id].level

    def cutoff(self, node_id: str) -> int | None:
        r = self.revoked.get(node_id)
        return None if r is None else r.after_seq

    def rows(self) -> list[dict[str, Any]]:
        """Every member as the CLI and the UI list them, oldest first."""
        return sorted(({"node_id": m.node_id, "level": self.level_of(m.node_id), "display_name": m.display_name, "added_at": m.added_at,
                        "revoked": m.node_id in self.revoked, "root": m.node_id == self.root_key} for m in self.members.values()),
                      key=lambda r: r["added_at"])


def genesis_ok(ev: Event, community_id: str) -> bool:
    if ev.event_type != "community.created" or ev.seq != 1:
        return False
    d = ev.data
    return ev.author == d.get("root_key") and derive_community_id(d["name"], d["root_key"], d["created_at"]) == community_id


def status_for(state: MembershipState, author: str, seq: int, forks: dict[str, int]) -> int:
    """The status of an author's event at `seq` under `state` (genesis handled by the caller)."""
    if state.genesis is None or author not in state.members:
        return PARKED
    cut = state.cutoff(author)
    if cut is not None and seq > cut:
        return VOID
    f = forks.get(author)
    if f is not None and seq >= f:
        return FORKED
    return VALID


# Which policy threshold counts the signatures of each membership change.
THRESHOLD_OF = {
    "community.member.joined": "min_signatures_to_invite",
    "community.member.promoted": "min_signatures_to_promote",
    "community.member.demoted": "min_signatures_to_demote",
    "community.member.revoked": "min_signatures_to_revoke",
}


def may_author(state: MembershipState, ev: Event) -> bool:
    """May `ev.author` sign this membership change (as its proposal or a co-signature) here?

    - Nobody changes the root's membership; policy changes are the root's or an anchor's.
    - Admitting (`joined`): trusted members and anchors, or any member when the policy
      says `default_member_can_invite`; never at a level above the signer's own, and
      never a revoked node id.
    - `promoted`, `demoted`, `revoked`: trusted members and anchors, only for a current
      member at or below their own level, and never to a level above their own.
    """
    level = TRUST_ORDER.get(state.level_of(ev.author), 0)
    trusted = TRUST_ORDER["trusted"]
    target = ev.data.get("node_id")
    if target is not None and target == state.root_key:
        return False
    t = ev.event_type
    if t == "community.member.joined":
        allowed = level >= trusted or (level >= TRUST_ORDER["member"] and bool(state.policy.get("default_member_can_invite")))
        return allowed and target not in state.revoked and TRUST_ORDER.get(ev.data.get("level", "member"), 99) <= level
    if t in ("community.member.promoted", "community.member.demoted", "community.member.revoked"):
        if level < trusted or not state.is_member(target):
            return False
        if TRUST_ORDER.get(state.level_of(target), 0) > level:
            return False
        return t == "community.member.revoked" or TRUST_ORDER.get(ev.data.get("level"), 99) <= level
    if t == "community.policy.updated":
        return level >= TRUST_ORDER["anchor"]
    return True


def proposal_key(ev: Event) -> tuple[str, ...]:
    """Signatures agree on a change when they have the same key: type, target and level."""
    d = ev.data
    if ev.event_type == "community.member.revoked":
        return (ev.event_type, d["node_id"])
    return (ev.event_type, str(d.get("node_id", "")), str(d.get("level", "member")))


def threshold(state: MembershipState, ev: Event) -> int:
    name = THRESHOLD_OF.get(ev.event_type)
    return max(1, int(state.policy.get(name, 1))) if name else 1


def _apply(state: MembershipState, ev: Event) -> None:
    d = ev.data
    t = ev.event_type
    if t == "community.member.joined":
        state.members.setdefault(
            d["node_id"], MemberInfo(d["node_id"], d.get("level", "member"), ev.wall_clock, ev.author, d.get("display_name", ""))
        )
    elif t in ("community.member.promoted", "community.member.demoted"):
        state.members[d["node_id"]].level = d["level"]
    elif t == "community.member.revoked":
        state.revoked.setdefault(d["node_id"], RevokedInfo(d["node_id"], d["after_seq"], ev.wall_clock, ev.author, d.get("reason", "")))
    elif t == "community.policy.updated":
        state.policy = dict(d["policy"])


def derive(community_id: str, membership_events: Iterable[Event], forks: dict[str, int]) -> MembershipState:
    """Membership from the community.* events (any stored status), in log order.

    Revocation cut-offs can void membership events that come *earlier* in the
    order (a revoked admin's later joins), so the derivation repeats with the
    cut-offs of the previous pass until they stop changing.
    """
    events = sorted(membership_events, key=lambda e: e.order_key)
    genesis = next((e for e in events if genesis_ok(e, community_id)), None)
    cutoffs: dict[str, int] = {}
    state = MembershipState(community_id)
    for _ in range(len(events) + 2):
        state = MembershipState(community_id)
        if genesis is None:
            return state
        state.genesis = genesis
        root = genesis.data["root_key"]
        state.members[root] = MemberInfo(root, "anchor", genesis.wall_clock, root)
        state.policy = dict(genesis.data["policy"])
        pending: dict[tuple[str, ...], dict[str, Event]] = {}  # proposal -> signer -> their event
        for ev in events:
            if ev is genesis or ev.event_type == "community.created":
                continue
            if status_for(state, ev.author, ev.seq, forks) != VALID:
                continue
            cut = cutoffs.get(ev.author)
            if cut is not None and ev.seq > cut:
                continue
            if not may_author(state, ev):
                continue
            # The first signature is the proposal, later ones by other signers co-sign it; the
            # change takes effect (with the proposal's data) once the policy's number is reached.
            key = proposal_key(ev)
            sigs = pending.setdefault(key, {})
            sigs.setdefault(ev.author, ev)
            if len(sigs) >= threshold(state, ev):
                _apply(state, min(sigs.values(), key=lambda e: e.order_key))
                del pending[key]
        state.pending = {k: sorted(v) for k, v in pending.items()}
        new_cutoffs = {n: r.after_seq for n, r in state.revoked.items()}
        if new_cutoffs == cutoffs:
            break
        cutoffs = new_cutoffs
    return state


__all__ = [
    "MemberInfo",
    "MembershipState",
    "RevokedInfo",
    "derive",
    "derive_community_id",
    "genesis_ok",
    "may_author",
    "proposal_key",
    "threshold",
    "status_for",
]
