import itertools
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventgen import Chain, chat_data, post_data, seeded_key
from hearthnet.errors import HearthNetError
from hearthnet.events.log import EventLog, verify_event_envelope
from hearthnet.identity import keys


def test_local_chain_seq_prev_lamport(community):
    log, root, anchor = community
    e1 = log.append_local("market.post.created", post_data(901), anchor)
    e2 = log.append_local("market.post.created", post_data(902), anchor)
    assert (e1.seq, e2.seq) == (1, 2)
    assert e1.prev is None and e2.prev == e1.hash
    assert e2.lamport == e1.lamport + 1
    assert verify_event_envelope(e2.envelope(), log.community_id).hash == e2.hash
    assert log.get(e2.event_id).payload == e2.payload


def test_survives_reopen_and_continues_chain(community, tmp_path):
    log, root, anchor = community
    e1 = log.append_local("market.post.created", post_data(903), anchor)
    path, cid = log.path, log.community_id
    log.close()
    with EventLog(path, cid) as again:
        e2 = again.append_local("market.post.created", post_data(904), anchor)
        assert e2.seq == 2 and e2.prev == e1.hash and e2.lamport == e1.lamport + 1
        assert again.membership.is_member(anchor.node_id)


def test_non_member_and_non_anchor_writes_refused(community):
    log, root, anchor = community
    stranger = keys.generate()
    with pytest.raises(HearthNetError) as e:
        log.append_local("market.post.created", post_data(905), stranger)
    assert e.value.code == "not_member"
    member = keys.generate()
    log.append_local("community.member.joined", {"node_id": member.node_id, "level": "member"}, root)
    with pytest.raises(HearthNetError) as e:
        log.append_local("community.member.joined", {"node_id": stranger.node_id}, member)
    assert e.value.code == "forbidden"
    with pytest.raises(HearthNetError) as e:
        log.append_local("community.member.joined", {"node_id": "nope"}, root)
    assert e.value.code == "event_invalid"


def test_wrong_community_db_refused(community):
    log, _, _ = community
    with pytest.raises(HearthNetError) as e:
        EventLog(log.path, "X" * 43)
    assert e.value.code == "wrong_community"


def test_lamport_observes_received(community, empty_log_for):
    log, root, anchor = community
    other = empty_log_for(log.community_id)
    for ev in log.replay():
        other.append_received(ev.envelope())
    for _ in range(5):
        log.append_local("market.post.created", post_data(906), anchor)
    last = list(log.replay())[-1]
    for ev in log.replay():
        other.append_received(ev.envelope())
    mine = other.append_local("market.post.created", post_data(907), root)
    assert mine.lamport == last.lamport + 1


def test_event_id_reuse_with_other_content_is_conflict(chain, empty_log_for):
    log = empty_log_for(chain.community_id)
    log.append_received(chain.genesis)
    alice = seeded_key("alice")
    log.append_received(chain.join(alice))
    e = chain.event(alice, "market.post.created", post_data(908))
    chain.counter -= 1  # same event id again
    f = chain.event(alice, "market.post.created", post_data(909), seq=2)
    log.append_received(e)
    with pytest.raises(HearthNetError) as err:
        log.append_received(f)
    assert err.value.code == "conflict"


def test_parked_bounded(chain, empty_log_for):
    log = empty_log_for(chain.community_id, max_parked=3)
    log.append_received(chain.genesis)
    bob = seeded_key("bob")
    for _ in range(3):
        assert log.append_received(chain.event(bob, "market.post.created", post_data(910))).result == "parked"
    with pytest.raises(HearthNetError) as e:
        log.append_received(chain.event(bob, "market.post.created", post_data(911)))
    assert e.value.code == "capacity_exceeded"
    log.append_received(chain.join(bob))
    assert log.count() == 2 + 3


def test_reset_listener_on_revocation(chain, empty_log_for):
    log = empty_log_for(chain.community_id)
    resets, seen = [], []
    log.add_reset_listener(lambda: resets.append(1))
    log.add_listener(lambda ev: seen.append(ev.event_id))
    alice = seeded_key("alice")
    for env in (chain.genesis, chain.join(alice)):
        log.append_received(env)
    late = [chain.event(alice, "market.post.created", post_data(i)) for i in range(3)]
    for env in late:
        log.append_received(env)
    assert len(seen) == 5 and not resets
    log.append_received(chain.event(chain.root, "community.member.revoked", {"node_id": alice.node_id, "after_seq": 1, "reason": ""}))
    assert resets and log.count() == 2 + 1 + 1


# --- convergence: any arrival order gives the same log --------------------------


def _scenario():
    root, alice, bob, carol = (seeded_key(n) for n in ("root", "alice", "bob", "carol"))
    c = Chain(root)
    evs = [c.genesis, c.join(alice), c.join(bob)]
    evs += [c.event(alice, "market.post.created", post_data(i)) for i in range(3)]
    evs += [c.event(bob, "chat.message.sent", chat_data(i)) for i in range(2)]
    evs.append(c.event(carol, "market.post.created", post_data(912)))
    evs.append(c.event(root, "community.member.revoked", {"node_id": bob.node_id, "after_seq": 1, "reason": ""}))
    evs.append(c.event(bob, "chat.message.sent", chat_data(913)))  # past bob's cut-off
    a2 = json.loads(evs[4]["payload"])
    evs.append(c.event(alice, "market.post.created", post_data(914), seq=2, prev=a2["prev"], lamport=a2["lamport"], advance=False))
    return c.community_id, evs


CID, EVENTS = _scenario()


def _final_state(log):
    return sorted((ev.event_id, st) for ev, st in log.rows_with_status()), [e.event_id for e in log.replay()]


@given(st.permutations(range(len(EVENTS))))
@settings(max_examples=40, deadline=None)
def test_every_arrival_order_converges(tmp_path_factory, order):
    ref_dir = tmp_path_factory.mktemp("ref")
    with EventLog(ref_dir / "a.db", CID) as ref:
        for env in EVENTS:
            try:
                ref.append_received(env)
            except HearthNetError:
                pass
        expected = _final_state(ref)
    d = tmp_path_factory.mktemp("perm")
    with EventLog(d / "b.db", CID) as log:
        for i in order:
            try:
                log.append_received(EVENTS[i])
            except HearthNetError as e:
                assert e.code == "revoked"
        # A refused event (revoked) may be refused in one order and stored-then-voided in another:
        # the *valid* set and the replay order must agree.
        got = _final_state(log)
    valid = lambda state: sorted(e for e, s in state[0] if s in ("valid", "forked", "parked"))  # noqa: E731
    assert valid(got) == valid(expected)
    assert got[1] == expected[1]


def test_batch_in_any_order_matches(tmp_path):
    with EventLog(tmp_path / "x.db", CID) as a, EventLog(tmp_path / "y.db", CID) as b:
        a.append_received_many(EVENTS)
        shuffled = EVENTS[:]
        random.Random(7).shuffle(shuffled)
        b.append_received_many(shuffled)
        assert [e.event_id for e in a.replay()] == [e.event_id for e in b.replay()]
        assert a.forks() == b.forks() and a.forks()


def test_replay_filters(community):
    log, root, anchor = community
    for i in range(5):
        log.append_local("market.post.created", post_data(i), anchor)
        log.append_local("chat.message.sent", chat_data(i), anchor)
    assert len(list(log.replay(event_types=["chat.message.sent"]))) == 5
    assert len(list(log.replay(limit=3))) == 3
    head = log.head()
    assert list(log.replay(since_lamport=head)) == []
    order = [e.order_key for e in log.replay()]
    assert order == sorted(order)
    assert list(itertools.islice(log.replay(after=order[3]), 1))[0].order_key == order[4]


def test_verify_all_detects_tampering_on_disk(community):
    log, root, anchor = community
    for i in range(10):
        log.append_local("market.post.created", post_data(i), anchor)
    assert log.verify_all().ok
    victim = list(log.replay())[5]
    tampered = victim.payload.replace('"title":"Post ', '"title":"Fake ')
    assert tampered != victim.payload
    log._db.execute("UPDATE events SET payload=? WHERE event_id=?", (tampered, victim.event_id))
    rep = log.verify_all(workers=1)
    assert [e for e, _ in rep.problems] == [victim.event_id]
    log._db.execute("UPDATE events SET payload=?, lamport=lamport+1 WHERE event_id=?", (victim.payload, victim.event_id))
    assert not log.verify_all(workers=1).ok


def test_verify_all_parallel_matches_serial(community):
    log, root, anchor = community
    for i in range(2500):
        log.append_local("market.post.created", post_data(i), anchor)
    v = list(log.replay())[100]
    log._db.execute("UPDATE events SET sig=? WHERE event_id=?", (list(log.replay())[101].sig, v.event_id))
    serial = log.verify_all(workers=1)
    parallel = log.verify_all(workers=2)
    assert serial.problems == parallel.problems == [(v.event_id, "signature does not verify")]


def test_missing_reports_gaps(chain, empty_log_for):
    log = empty_log_for(chain.community_id)
    alice = seeded_key("alice")
    evs = [chain.genesis, chain.join(alice)] + [chain.event(alice, "market.post.created", post_data(i)) for i in range(5)]
    for env in evs[:3] + evs[5:]:
        log.append_received(env)
    assert log.missing() == {alice.node_id: [(2, 3)]}
    assert log.author_heads()[alice.node_id] == (1, 3)


def test_subscribe_yields_new_valid_events(community):
    import asyncio

    log, root, anchor = community

    async def main():
        got = []

        async def consume():
            async for ev in log.subscribe(event_types=["chat.message.sent"]):
                got.append(ev.data["msg_id"])
                if len(got) == 3:
                    return

        task = asyncio.create_task(consume())
        while not log._listeners:  # the subscription is registered on its first step
            await asyncio.sleep(0)
        for i in range(3):
            log.append_local("market.post.created", post_data(1000 + i), anchor)  # filtered out
            await asyncio.to_thread(log.append_local, "chat.message.sent", chat_data(i), anchor)
        await asyncio.wait_for(task, 5)
        return got

    assert asyncio.run(main()) == [chat_data(i)["msg_id"] for i in range(3)]
    assert log._listeners == []  # the subscription cleaned up after itself


def test_slow_subscriber_gets_capacity_exceeded(community):
    import asyncio

    log, root, anchor = community

    async def main():
        agen = log.subscribe(max_queue=2)
        first = asyncio.ensure_future(agen.__anext__())
        while not log._listeners:
            await asyncio.sleep(0)
        for i in range(6):
            log.append_local("chat.message.sent", chat_data(i), anchor)
        assert (await first).data == chat_data(0)
        with pytest.raises(HearthNetError) as e:
            for _ in range(6):
                await agen.__anext__()
        assert e.value.code == "capacity_exceeded"
        await agen.aclose()

    asyncio.run(main())


def test_group_commit_append_keeps_chains_and_order(community):
    import asyncio

    log, root, anchor = community
    member = keys.generate()
    log.append_local("community.member.joined", {"node_id": member.node_id, "level": "member"}, root)

    async def main():
        async def writer(kp, n):
            return [await log.append("market.post.created", post_data(i), kp) for i in range(n)]

        return await asyncio.gather(*(writer(anchor if i % 2 else member, 50) for i in range(8)))

    batches = asyncio.run(main())
    mine = [e for b in batches for e in b if e.author == anchor.node_id]
    assert sorted(e.seq for e in mine) == list(range(1, 201))
    stored = [e for e in log.replay() if e.author == anchor.node_id]
    assert [e.seq for e in stored] == list(range(1, 201))
    assert all(b.prev == a.hash for a, b in zip(stored, stored[1:], strict=False))
    assert log.verify_all(workers=1).ok and log.count() == 3 + 400
    lamports = [e.lamport for e in log.replay()]
    assert len(set(lamports)) == len(lamports)  # one writer process: every event its own tick


def test_group_commit_refuses_what_append_local_refuses(community):
    import asyncio

    log, root, anchor = community
    with pytest.raises(HearthNetError) as e:
        asyncio.run(log.append("market.post.created", post_data(915), keys.generate()))
    assert e.value.code == "not_member"
    ev = asyncio.run(log.append("community.member.joined", {"node_id": keys.generate().node_id}, root))  # membership: sync path
    assert log.status_of(ev.event_id) == "valid"


def test_chat_event_data_is_checked_by_the_log(community):
    log, root, anchor = community
    head = log.head()
    bad = [("chat.message.sent", {**chat_data(1), "to": "not-a-node"}), ("chat.message.sent", {**chat_data(2), "body": "in clear"}),
           ("chat.message.sent", {**chat_data(3), "box": "x" * 24001}), ("chat.message.read", {"msg_ids": []}),
           ("chat.message.delivered", {"msg_ids": ["nope"]})]
    for event_type, data in bad:
        with pytest.raises(HearthNetError) as e:
            log.append_local(event_type, data, anchor)
        assert e.value.code == "event_invalid", (event_type, data)
    assert log.head() == head
    assert log.append_local("chat.message.read", {"msg_ids": [chat_data(1)["msg_id"]]}, anchor).seq
