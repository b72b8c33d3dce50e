"""Regenerate tests/vectors/events.json: python tests/vectors/make_event_vectors.py

Deterministic (seeded keys, fixed ids and clocks), so the committed file only
changes when the wire format does; tests/unit/events/test_vectors.py checks that
regenerating gives the same bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from eventgen import Chain, post_data, seeded_key  # noqa: E402

from hearthnet import constants as C  # noqa: E402


def build() -> dict:
    root, alice, bob = seeded_key("root"), seeded_key("alice"), seeded_key("bob")
    c = Chain(root)
    join_a = c.join(alice)
    a1 = c.event(alice, "market.post.created", post_data(1, "Eggs"))
    cases = []

    def case(name, description, given, event, expect, final=None):
        cases.append({"name": name, "description": description, "given": given, "event": event, "expect": expect, "final": final or {}})

    def eid(env):
        return json.loads(env["payload"])["event_id"]

    case("valid_genesis", "The community.created event signed by the root key it names.", [], c.genesis, "added", {eid(c.genesis): "valid"})
    case("valid_member_event", "An event by a joined member.", [c.genesis, join_a], a1, "added", {eid(a1): "valid"})

    # Bad signature: the signature of a different payload.
    other = c.event(alice, "market.post.created", post_data(2, "Milk"), advance=False)
    case("bad_signature", "Signature made over other bytes.", [c.genesis, join_a], {"payload": a1["payload"], "sig": other["sig"]}, {"error": "invalid_signature"})

    # Wrong author: claims alice, signed by bob.
    forged = c.event(bob, "market.post.created", post_data(3, "Free money"), author=alice.node_id, seq=2, prev=c.heads[alice.node_id][1], advance=False)
    case("wrong_author", "Author field names alice; bob signed it.", [c.genesis, join_a, a1], forged, {"error": "invalid_signature"})

    # Tampered field after signing (still canonical).
    tampered = {"payload": a1["payload"].replace('"Eggs"', '"Gold"'), "sig": a1["sig"]}
    case("tampered_field", "A data field changed after signing.", [c.genesis, join_a], tampered, {"error": "invalid_signature"})

    # Not canonical: correctly signed, but with whitespace.
    obj = json.loads(a1["payload"])
    loose = json.dumps(obj, indent=1).encode()
    case("not_canonical", "Validly signed but not RFC 8785 canonical.", [c.genesis, join_a],
         {"payload": loose.decode(), "sig": alice.sign_bytes(loose, C.SIGN_DOMAIN_EVENT)}, {"error": "event_invalid"})

    wc = c.event(alice, "market.post.created", post_data(4, "Elsewhere"), advance=False, mutate=lambda o: o.update(community_id="B" * 43))
    case("wrong_community", "Signed for another community.", [c.genesis, join_a], wc, {"error": "wrong_community"})

    ut = c.event(alice, "weather.report", {"sky": "grey"}, advance=False)
    case("unknown_type", "Event type outside the closed set.", [c.genesis, join_a], ut, {"error": "event_invalid"})

    mf = c.event(alice, "market.post.created", post_data(5), advance=False, mutate=lambda o: o.pop("wall_clock"))
    case("missing_field", "A required payload field is absent.", [c.genesis, join_a], mf, {"error": "event_invalid"})

    bp = c.event(alice, "market.post.created", post_data(6), seq=1, prev="blake3:" + "0" * 64, advance=False)
    case("prev_on_first_event", "seq 1 must have prev null.", [c.genesis, join_a], bp, {"error": "event_invalid"})

    bd = c.event(root, "community.member.joined", {"node_id": "not-a-node"}, advance=False)
    case("bad_membership_data", "Membership event data fails its schema.", [c.genesis], bd, {"error": "event_invalid"})

    bm = c.event(alice, "market.post.created", {"title": "Eggs", "category": "offer"}, advance=False)
    case("bad_market_data", "Market event data fails its schema (no post_id, no expires_at).", [c.genesis, join_a], bm, {"error": "event_invalid"})

    big = c.event(alice, "market.post.created", {"blob": "x" * (C.EVENT_MAX_PAYLOAD_BYTES + 10)}, advance=False)
    case("oversized", "Payload above the size limit.", [c.genesis, join_a], big, {"error": "payload_too_large"})

    case("duplicate", "The same event again is a no-op.", [c.genesis, join_a, a1], a1, "duplicate", {eid(a1): "valid"})

    # Reordered: alice's second event and her join arrive before her first.
    a2 = c.event(alice, "market.post.created", post_data(7, "Butter"))
    case("reordered", "Out-of-order arrival ends valid and ordered by (lamport, author, id).", [c.genesis, a2, join_a], a1, "added",
         {eid(a1): "valid", eid(a2): "valid"})

    # Forked: two different events by alice with the same seq/Lamport claim.
    a2_obj = json.loads(a2["payload"])
    fork = c.event(alice, "market.post.created", post_data(8, "Other butter"), seq=2, prev=a2_obj["prev"], lamport=a2_obj["lamport"], advance=False)
    case("forked", "Two events by one author with the same seq: both kept, author marked forked from there.",
         [c.genesis, join_a, a1, a2], fork, "added", {eid(a1): "valid", eid(a2): "forked", eid(fork): "forked"})

    b1 = c.event(bob, "market.post.created", post_data(9, "Who am I"))
    case("unknown_author", "An author with no join yet is parked, not rejected.", [c.genesis], b1, "parked", {eid(b1): "parked"})

    rev = c.event(root, "community.member.revoked", {"node_id": alice.node_id, "after_seq": 2, "reason": "lost device"})
    a3 = c.event(alice, "market.post.created", post_data(10, "After revocation"))
    case("revoked_author", "Events after the revocation's cut-off are refused.", [c.genesis, join_a, a1, a2, rev], a3, {"error": "revoked"},
         {eid(a1): "valid", eid(a2): "valid"})
    case("revocation_arrives_late", "An event past the cut-off that was stored first turns void.", [c.genesis, join_a, a1, a2, a3], rev, "added",
         {eid(a1): "valid", eid(a2): "valid", eid(a3): "void"})

    return {"community_id": c.community_id, "root": root.node_id, "cases": cases}


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    (HERE / "events.json").write_text(render())
    print(f"wrote {HERE / 'events.json'}")
