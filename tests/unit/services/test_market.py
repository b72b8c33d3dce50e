"""The marketplace against a real signed event log: posts, author-only edits, expiry, search, replay."""

import asyncio

import pytest

from hearthnet import clock
from hearthnet.config import MarketConfig
from hearthnet.errors import HearthNetError
from hearthnet.events.replay import ReplayEngine
from hearthnet.identity import keys
from hearthnet.services.marketplace.service import MarketService
from hearthnet.services.marketplace.view import MarketView


@pytest.fixture
def market(community, tmp_path):
    """(service of the community's root node, a second member's key, the log, the view)."""
    log, root, _ = community
    other = keys.generate()
    log.append_local("community.member.joined", {"node_id": other.node_id, "level": "member", "display_name": "other"}, root)
    engine = ReplayEngine(log)
    view = MarketView()
    engine.register(view)
    engine.catch_up()
    svc = MarketService(MarketConfig(default_ttl_seconds=3600, max_ttl_seconds=7200), view, lambda t, d: log.append_local(t, d, root), root.node_id)
    return svc, other, log, view


def call(handler, body):
    return asyncio.run(handler(body, None))


def test_post_list_search_and_filters(market):
    svc, _, _, view = market
    a = call(svc._post, {"category": "offer", "title": "Fresh eggs", "body": "A dozen from the hens by the mill", "tags": ["food", "eggs"]})
    call(svc._post, {"category": "request", "title": "Need a ladder", "body": "For the barn roof, two days", "tags": ["tools"]})
    call(svc._post, {"category": "emergency", "title": "Water main burst on Mill Lane", "tags": ["water"]})
    assert len(call(svc._list, {})["posts"]) == 3
    assert [p["title"] for p in call(svc._list, {"category": "offer"})["posts"]] == ["Fresh eggs"]
    assert [p["title"] for p in call(svc._list, {"tag": "tools"})["posts"]] == ["Need a ladder"]
    # Word prefixes, all terms must hit, title hits rank above body hits.
    assert [p["title"] for p in call(svc._list, {"query": "mill"})["posts"]] == ["Water main burst on Mill Lane", "Fresh eggs"]
    assert call(svc._list, {"query": "egg doz"})["posts"][0]["post_id"] == a["post_id"]
    assert call(svc._list, {"query": "eggs ladder"})["posts"] == []


def test_only_the_author_changes_a_post_and_views_replay_the_same(market):
    svc, other, log, view = market
    a = call(svc._post, {"category": "offer", "title": "Bike", "tags": ["bike"]})
    call(svc._update, {"post_id": a["post_id"], "title": "Blue bike", "tags": ["bike", "blue"]})
    # Another member signs an edit of our post: the log takes it (it is a valid event), the view ignores it.
    log.append_local("market.post.updated", {"post_id": a["post_id"], "title": "STOLEN"}, other)
    log.append_local("market.post.expired", {"post_id": a["post_id"], "reason": "author"}, other)
    p = view.get(a["post_id"])
    assert p.title == "Blue bike" and p.tags == ["bike", "blue"] and p.expired is None
    # Its own node refuses to edit someone else's post.
    theirs = log.append_local("market.post.created", {"post_id": "01J0000000000000000000TEST", "category": "info", "title": "Theirs",
                                                      "expires_at": clock.iso(clock.now() + 600)}, other)
    assert theirs and view.get("01J0000000000000000000TEST").author == other.node_id
    with pytest.raises(HearthNetError) as e:
        call(svc._update, {"post_id": "01J0000000000000000000TEST", "title": "mine now"})
    assert e.value.code == "forbidden"
    with pytest.raises(HearthNetError) as e:
        call(svc._update, {"post_id": "01J0000000000000000000NONE", "title": "x"})
    assert e.value.code == "not_found"
    call(svc._expire, {"post_id": a["post_id"]})
    with pytest.raises(HearthNetError) as e:
        call(svc._update, {"post_id": a["post_id"], "title": "again"})
    assert e.value.code == "conflict"
    assert [x["title"] for x in call(svc._list, {})["posts"]] == ["Theirs"]
    assert {x["title"] for x in call(svc._list, {"include_expired": True})["posts"]} == {"Theirs", "Blue bike"}
    # A fresh view rebuilt from the log agrees with the live one.
    fresh = MarketView()
    e2 = ReplayEngine(log)
    e2.register(fresh)
    e2.catch_up()
    assert fresh.query(include_expired=True) == view.query(include_expired=True)
    restored = MarketView()
    restored.restore_state(view.snapshot_state())
    assert restored.query(include_expired=True, text="bike") == view.query(include_expired=True, text="bike")


def test_ttl_expiry_and_the_sweep(market):
    svc, _, log, view = market
    a = call(svc._post, {"category": "info", "title": "Soon gone", "ttl_seconds": 60})
    call(svc._post, {"category": "info", "title": "Stays"})
    assert svc.sweep() == []
    later = clock.now() + 120
    assert [p["title"] for p in view.query(now=later)] == ["Stays"]  # out of the listing by time alone
    clock.set_offset(120)
    try:
        assert svc.sweep() == [a["post_id"]] and svc.sweep() == []
        assert view.get(a["post_id"]).expired == "ttl"
    finally:
        clock.set_offset(0)
    assert sum(1 for ev in log.replay() if ev.event_type == "market.post.expired") == 1


def test_bad_posts_are_clear_errors_and_leave_nothing(market):
    svc, _, log, _ = market
    head = log.head()
    for body, code in (({"category": "offer", "title": "x" * 201}, "payload_too_large"),
                       ({"category": "offer", "title": "ok", "body": "b" * 4001}, "payload_too_large"),
                       ({"category": "offer", "title": "ok", "tags": [f"t{i}" for i in range(11)]}, "payload_too_large"),
                       ({"category": "offer", "title": "ok", "ttl_seconds": 99999}, "bad_request")):
        with pytest.raises(HearthNetError) as e:
            call(svc._post, body)
        assert e.value.code == code
    assert log.head() == head


def test_malformed_market_events_are_refused_by_the_log(market):
    _, other, log, view = market
    head = log.head()
    for data in ({"title": "no id, no category"},
                 {"post_id": "01J0000000000000000000BAD0", "category": "swap", "title": "x", "expires_at": clock.iso(clock.now() + 600)},
                 {"post_id": "01J0000000000000000000BAD0", "category": "offer", "title": "x" * 201, "expires_at": clock.iso(clock.now() + 600)}):
        with pytest.raises(HearthNetError) as e:
            log.append_local("market.post.created", data, other)
        assert e.value.code == "event_invalid"
    with pytest.raises(HearthNetError):
        log.append_local("market.post.expired", {"post_id": "01J0000000000000000000BAD0", "reason": "bored"}, other)
    assert log.head() == head and view.query(include_expired=True) == []
