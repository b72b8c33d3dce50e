"""Build signed events by hand (fixed ids, clocks and keys) for tests and vectors.

append_local mints ULIDs and wall clocks; tests that need exact bytes, forks or
forgeries build envelopes here with the same canonical_json and signing code.
"""

from __future__ import annotations

import hashlib
from typing import Any

from hearthnet import constants as C
from hearthnet.events.log import event_hash
from hearthnet.events.membership import derive_community_id
from hearthnet.identity import keys
from hearthnet.identity.canonical import canonical_json
from hearthnet.identity.keys import KeyPair

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def seeded_key(name: str) -> KeyPair:
    return keys.from_seed(hashlib.sha256(b"hearthnet-test-key:" + name.encode()).digest())


def fixed_ulid(n: int) -> str:
    out = ""
    for _ in range(26):
        out = _CROCKFORD[n % 32] + out
        n //= 32
    return "01" + out[2:]


def post_data(n: int, title: str | None = None) -> dict[str, Any]:
    """Well-formed market.post.created data (the log checks it), unique per n."""
    return {"post_id": fixed_ulid(10_000 + n), "category": "offer", "title": title or f"Post {n}", "body": "", "tags": [],
            "expires_at": "2030-01-01T00:00:00.000Z"}


def chat_data(n: int, to: str | None = None) -> dict[str, Any]:
    """Well-formed chat.message.sent data (the box is not a real ciphertext: the log does not open it)."""
    return {"msg_id": fixed_ulid(20_000 + n), "to": to or seeded_key("chat-peer").node_id, "box": f"box-{n}"}


POLICY = {
    "default_member_can_invite": False,
    "min_signatures_to_demote": 1,
    "min_signatures_to_invite": 1,
    "min_signatures_to_promote": 1,
    "min_signatures_to_revoke": 1,
}


class Chain:
    """A community being written by hand: tracks seq/prev per author and the Lamport clock."""

    def __init__(self, root: KeyPair, name: str = "Vectordorf", created_at: str = "2026-01-01T00:00:00.000Z") -> None:
        self.root = root
        self.created_at = created_at
        self.community_id = derive_community_id(name, root.node_id, created_at)
        self.heads: dict[str, tuple[int, str | None]] = {}
        self.lamport = 0
        self.counter = 0
        self.genesis = self.event(root, "community.created", {"name": name, "root_key": root.node_id, "created_at": created_at, "policy": POLICY})

    def event(
        self,
        kp: KeyPair,
        event_type: str,
        data: dict[str, Any],
        *,
        seq: int | None = None,
        prev: str | None | bool = False,
        lamport: int | None = None,
        advance: bool = True,
        author: str | None = None,
        mutate: Any = None,
    ) -> dict[str, str]:
        head_seq, head_hash = self.heads.get(kp.node_id, (0, None))
        s = seq if seq is not None else head_seq + 1
        p = head_hash if prev is False else prev
        lam = lamport if lamport is not None else self.lamport + 1
        self.counter += 1
        obj = {
            "schema_version": 1,
            "event_id": fixed_ulid(self.counter),
            "community_id": self.community_id,
            "author": author or kp.node_id,
            "seq": s,
            "prev": p,
            "lamport": lam,
            "wall_clock": f"2026-01-01T00:{(self.counter // 60) % 60:02d}:{self.counter % 60:02d}.000Z",
            "event_type": event_type,
            "data": data,
        }
        if mutate:
            mutate(obj)
        payload = canonical_json(obj)
        env = {"payload": payload.decode(), "sig": kp.sign_bytes(payload, C.SIGN_DOMAIN_EVENT)}
        if advance:
            self.heads[kp.node_id] = (s, event_hash(payload))
            self.lamport = max(self.lamport, lam)
        return env

    def join(self, kp: KeyPair, level: str = "member") -> dict[str, str]:
        return self.event(self.root, "community.member.joined", {"node_id": kp.node_id, "level": level, "display_name": ""})
