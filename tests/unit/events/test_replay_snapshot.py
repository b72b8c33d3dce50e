import json

import pytest

from eventgen import Chain, chat_data, post_data, seeded_key
from hearthnet.events.log import EventLog
from hearthnet.events.replay import ActivityView, ReplayEngine
from hearthnet.events.snapshot import SnapshotStore, build_snapshot, restore_from_snapshot


def _fill(log, anchor, n=50):
    for i in range(n):
        if i % 2:
            log.append_local("market.post.created", post_data(i), anchor)
        else:
            log.append_local("chat.message.sent", chat_data(i), anchor)


def _engine(log):
    eng = ReplayEngine(log)
    view = ActivityView()
    eng.register(view)
    eng.catch_up()
    return eng, view


def test_live_apply_equals_rebuild(community):
    log, root, anchor = community
    eng, view = _engine(log)
    _fill(log, anchor)
    live = view.snapshot_state()
    eng.rebuild_all()
    assert view.snapshot_state() == live
    assert view.authors[anchor.node_id]["events"] == 50
    assert eng.applied == log.count()


def test_snapshot_restore_equals_full_replay(community, tmp_path):
    log, root, anchor = community
    eng, view = _engine(log)
    _fill(log, anchor, 30)
    store = SnapshotStore(tmp_path / "snaps", log.community_id)
    store.write(build_snapshot(log, eng, anchor))
    _fill(log, anchor, 20)
    full = view.snapshot_state()

    eng2 = ReplayEngine(log)
    v2 = ActivityView()
    eng2.register(v2)
    snap = store.latest({anchor.node_id})
    assert snap is not None
    assert restore_from_snapshot(snap, eng2, log) is True
    assert v2.snapshot_state() == full
    assert eng2.applied == log.count()


def test_stale_snapshot_is_not_trusted(tmp_path):
    root, alice, bob = seeded_key("root"), seeded_key("alice"), seeded_key("bob")
    c = Chain(root)
    evs = [c.genesis, c.join(alice), c.join(bob)]
    early_bob = c.event(bob, "market.post.created", post_data(901))  # low Lamport, delivered late
    evs += [c.event(alice, "market.post.created", post_data(i)) for i in range(5)]
    with EventLog(tmp_path / "e.db", c.community_id) as log:
        for env in evs:
            log.append_received(env)
        eng, view = _engine(log)
        signer = seeded_key("node")
        store = SnapshotStore(tmp_path / "s", c.community_id)
        store.write(build_snapshot(log, eng, signer))
        log.append_received(early_bob)  # sorts before the snapshot position
        assert eng.rebuilds >= 1  # the live engine noticed and rebuilt
        fresh = ReplayEngine(log)
        fv = ActivityView()
        fresh.register(fv)
        assert restore_from_snapshot(store.latest({signer.node_id}), fresh, log) is False
        assert fv.authors[bob.node_id]["events"] == 1
        assert fv.snapshot_state() == view.snapshot_state()


def test_tampered_or_foreign_snapshots_ignored(community, tmp_path):
    log, root, anchor = community
    eng, _ = _engine(log)
    store = SnapshotStore(tmp_path / "s", log.community_id)
    p = store.write(build_snapshot(log, eng, anchor))
    assert store.latest({anchor.node_id}) is not None
    assert store.latest({root.node_id}) is None  # not a trusted signer
    doc = json.loads(p.read_text())
    doc["payload"] = doc["payload"].replace('"applied":2', '"applied":3')
    p.write_text(json.dumps(doc))
    assert store.latest({anchor.node_id}) is None


def test_prune_keeps_newest(community, tmp_path):
    log, root, anchor = community
    eng, _ = _engine(log)
    store = SnapshotStore(tmp_path / "s", log.community_id)
    for _ in range(5):
        log.append_local("market.post.created", post_data(902), anchor)
        store.write(build_snapshot(log, eng, anchor))
    assert len(store.list()) == 5
    assert store.prune(2) == 3
    assert store.list() == sorted(store.list()) and len(store.list()) == 2
    assert store.latest({anchor.node_id}).lamport == log.head()


def test_revocation_rebuilds_views(tmp_path):
    root, alice = seeded_key("root"), seeded_key("alice")
    c = Chain(root)
    evs = [c.genesis, c.join(alice)] + [c.event(alice, "market.post.created", post_data(i)) for i in range(4)]
    with EventLog(tmp_path / "e.db", c.community_id) as log:
        eng, view = _engine(log)
        for env in evs:
            log.append_received(env)
        assert view.authors[alice.node_id]["events"] == 4
        log.append_received(c.event(root, "community.member.revoked", {"node_id": alice.node_id, "after_seq": 2, "reason": "x"}))
        assert view.authors[alice.node_id]["events"] == 2


def test_register_twice_refused(community):
    log, _, _ = community
    eng = ReplayEngine(log)
    eng.register(ActivityView())
    with pytest.raises(ValueError):
        eng.register(ActivityView())
