import pytest

from eventgen import Chain, chat_data, post_data, seeded_key
from hearthnet.errors import HearthNetError
from hearthnet.events import sync


def _two_sides(empty_log_for):
    root, alice, bob = seeded_key("root"), seeded_key("alice"), seeded_key("bob")
    c = Chain(root)
    base = [c.genesis, c.join(alice), c.join(bob)]
    a_only = [c.event(alice, "market.post.created", post_data(i)) for i in range(30)]
    b_only = [c.event(bob, "chat.message.sent", chat_data(i)) for i in range(20)]
    a, b = empty_log_for(c.community_id), empty_log_for(c.community_id)
    a.append_received_many(base + a_only)
    b.append_received_many(base + b_only)
    return a, b


def _sync_round(src, dst, limit):
    rounds = 0
    while True:
        rounds += 1
        batch = sync.batch_for(src, sync.heads_report(dst), limit=limit)
        wire = batch.model_dump_json().encode()
        res = sync.apply_batch(dst, sync.parse_batch(wire))
        assert not res["rejected"]
        if not batch.more:
            return rounds


def test_heads_and_batches_converge(empty_log_for):
    a, b = _two_sides(empty_log_for)
    assert _sync_round(a, b, limit=7) > 1  # paged
    _sync_round(b, a, limit=100)
    assert [e.event_id for e in a.replay()] == [e.event_id for e in b.replay()]
    assert sync.heads_report(a) == sync.heads_report(b)
    assert sync.batch_for(a, sync.heads_report(b)).events == []


def test_oversized_batch_refused_before_parse(empty_log_for):
    with pytest.raises(HearthNetError) as e:
        sync.parse_batch(b"{" + b" " * 100 + b"}", max_bytes=50)
    assert e.value.code == "payload_too_large"
    a, _ = _two_sides(empty_log_for)
    wire = sync.batch_for(a, sync.HeadsReport(community_id=a.community_id, head=0, authors={})).model_dump_json().encode()
    with pytest.raises(HearthNetError) as e:
        sync.parse_batch(wire, max_events=5)
    assert e.value.code == "payload_too_large"
    with pytest.raises(HearthNetError) as e:
        sync.parse_batch(b'{"community_id": 3}')
    assert e.value.code == "bad_request"


def test_forged_events_in_batch_are_rejected_and_counted(empty_log_for):
    a, b = _two_sides(empty_log_for)
    batch = sync.batch_for(a, sync.heads_report(b))
    forged = dict(batch.events[-1])
    forged["payload"] = forged["payload"].replace('"title":"Post ', '"title":"Fake ')
    assert forged["payload"] != batch.events[-1]["payload"]
    res = sync.apply_batch(b, sync.EventBatch(community_id=a.community_id, events=batch.events[:-1] + [forged]))
    assert [r["code"] for r in res["rejected"]] == ["invalid_signature"]
    assert res["added"] == len(batch.events) - 1


def test_wrong_community_refused(empty_log_for):
    a, _ = _two_sides(empty_log_for)
    with pytest.raises(HearthNetError) as e:
        sync.batch_for(a, sync.HeadsReport(community_id="other" * 9, head=0, authors={}))
    assert e.value.code == "wrong_community"
