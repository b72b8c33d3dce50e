"""Membership changes follow the community policy: who may sign, and how many distinct signers it takes."""

from __future__ import annotations

import pytest

from eventgen import post_data
from hearthnet.errors import HearthNetError
from hearthnet.events.types import PolicyData
from hearthnet.identity import keys


def policy(**kw):
    return {"policy": PolicyData(**kw).model_dump()}


def test_two_signatures_revoke_and_promote(community):
    log, root, anchor = community
    t1, t2, m1, m2 = (keys.generate() for _ in range(4))
    for kp, level in ((t1, "trusted"), (t2, "trusted"), (m1, "member"), (m2, "member")):
        log.append_local("community.member.joined", {"node_id": kp.node_id, "level": level}, root)
    log.append_local("community.policy.updated", policy(min_signatures_to_revoke=2, min_signatures_to_promote=2), root)
    m1_ev = log.append_local("market.post.created", post_data(901), m1)
    # One trusted signature is a proposal: nothing changes yet.
    log.append_local("community.member.revoked", {"node_id": m1.node_id, "after_seq": m1_ev.seq, "reason": "spam"}, t1)
    st = log.membership
    assert st.is_member(m1.node_id) and list(st.pending.values()) == [[t1.node_id]]
    # The same signer again does not count twice.
    log.append_local("community.member.revoked", {"node_id": m1.node_id, "after_seq": 99, "reason": "again"}, t1)
    assert log.membership.is_member(m1.node_id)
    # A second trusted signer co-signs: revoked, with the proposal's cut-off.
    log.append_local("community.member.revoked", {"node_id": m1.node_id, "after_seq": 0, "reason": "agree"}, t2)
    st = log.membership
    assert not st.is_member(m1.node_id) and st.revoked[m1.node_id].after_seq == m1_ev.seq and st.revoked[m1.node_id].reason == "spam"
    with pytest.raises(HearthNetError) as e:
        log.append_local("market.post.created", post_data(902), m1)
    assert e.value.code == "revoked"
    # Promotions: trusted may raise to trusted (two signatures), never to anchor.
    with pytest.raises(HearthNetError) as e:
        log.append_local("community.member.promoted", {"node_id": m2.node_id, "level": "anchor"}, t1)
    assert e.value.code == "forbidden"
    log.append_local("community.member.promoted", {"node_id": m2.node_id, "level": "trusted"}, t1)
    assert log.membership.level_of(m2.node_id) == "member"
    log.append_local("community.member.promoted", {"node_id": m2.node_id, "level": "trusted"}, anchor)
    assert log.membership.level_of(m2.node_id) == "trusted"
    # Nobody touches the root; trusted cannot demote an anchor.
    for kp, ev, data in ((anchor, "community.member.revoked", {"node_id": root.node_id, "after_seq": 0}),
                         (t1, "community.member.demoted", {"node_id": anchor.node_id, "level": "member"})):
        with pytest.raises(HearthNetError) as e:
            log.append_local(ev, data, kp)
        assert e.value.code == "forbidden"


def test_members_invite_only_when_the_policy_says_so(community):
    log, root, anchor = community
    m, x, y = keys.generate(), keys.generate(), keys.generate()
    log.append_local("community.member.joined", {"node_id": m.node_id, "level": "member"}, root)
    with pytest.raises(HearthNetError) as e:
        log.append_local("community.member.joined", {"node_id": x.node_id, "level": "member"}, m)
    assert e.value.code == "forbidden"
    log.append_local("community.policy.updated", policy(default_member_can_invite=True, min_signatures_to_invite=2), anchor)
    log.append_local("community.member.joined", {"node_id": y.node_id, "level": "member"}, m)
    assert not log.membership.is_member(y.node_id)  # a proposal: the policy wants two signers
    with pytest.raises(HearthNetError) as e:  # a member never admits above its own level
        log.append_local("community.member.joined", {"node_id": x.node_id, "level": "trusted"}, m)
    assert e.value.code == "forbidden"
    log.append_local("community.member.joined", {"node_id": y.node_id, "level": "member"}, anchor)
    assert log.membership.is_member(y.node_id) and log.membership.members[y.node_id].added_by == m.node_id


def test_same_events_same_state_in_any_arrival_order(community, empty_log_for):
    log, root, anchor = community
    t1, m = keys.generate(), keys.generate()
    log.append_local("community.member.joined", {"node_id": t1.node_id, "level": "trusted"}, root)
    log.append_local("community.member.joined", {"node_id": m.node_id}, root)
    log.append_local("community.policy.updated", policy(min_signatures_to_demote=2), root)
    log.append_local("community.member.promoted", {"node_id": m.node_id, "level": "trusted"}, anchor)
    log.append_local("community.member.demoted", {"node_id": m.node_id, "level": "member"}, t1)
    log.append_local("community.member.demoted", {"node_id": m.node_id, "level": "member"}, anchor)
    evs = list(log.replay())
    other = empty_log_for(log.community_id)
    for ev in reversed(evs):
        other.append_received(ev.envelope())
    a, b = log.membership, other.membership
    assert {k: v.level for k, v in a.members.items()} == {k: v.level for k, v in b.members.items()}
    assert a.level_of(m.node_id) == "member"
