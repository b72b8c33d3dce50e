"""Router scoring, table-driven (the weights are in docs/contract.md, "Routing")."""

import time

import pytest

from hearthnet.bus.capability import CapabilityEntry
from hearthnet.bus.health import MIN_SAMPLES, HealthTracker
from hearthnet.bus.registry import Registry
from hearthnet.bus.router import UNKNOWN_P50_MS, W_FAIL, W_LOAD, W_P50, W_P99, W_REMOTE, RouteRequest, Router, score

ME = "ed25519:me"


def entry(node, *, local=False, in_flight=0, maxc=4, version=(1, 0), params=None):
    spec = {"name": "llm.chat", "version": f"{version[0]}.{version[1]}", "max_concurrent": maxc, "params": params or {}}
    return CapabilityEntry(node, "llm.chat", version, spec, local, in_flight=in_flight, url=None if local else f"https://{node}")


def test_score_formula():
    h = HealthTracker()
    e = entry("b", in_flight=2, maxc=4)
    expected = W_LOAD * 0.5 + W_P50 * UNKNOWN_P50_MS / 100 + W_P99 * 2 * UNKNOWN_P50_MS / 1000 + W_FAIL * 0 + W_REMOTE
    assert score(e, h) == pytest.approx(expected)
    for ok, ms in [(True, 10), (True, 30), (False, 0), (True, 20)]:
        h.record("b", "llm.chat", success=ok, latency_ms=ms)
    s = score(e, h)
    assert s == pytest.approx(W_LOAD * 0.5 + W_P50 * 20 / 100 + W_P99 * 30 / 1000 + W_FAIL * 0.25 + W_REMOTE)


CASES = [
    # (name, entries, health records {node: [(ok, ms)]}, prefer_local, expected order)
    ("local first under threshold", [entry(ME, local=True, in_flight=1), entry("b"), entry("c")], {}, True, [ME, "b", "c"]),
    ("local loaded: remotes compete", [entry(ME, local=True, in_flight=4), entry("b"), entry("c", in_flight=3)], {}, True, ["b", "c", ME]),
    ("no prefer_local: local only wins by remote penalty", [entry(ME, local=True), entry("b")], {}, False, [ME, "b"]),
    ("lower load wins", [entry("b", in_flight=3), entry("c", in_flight=0)], {}, True, ["c", "b"]),
    ("faster wins", [entry("b"), entry("c")], {"b": [(True, 300)] * 10, "c": [(True, 20)] * 10}, True, ["c", "b"]),
    ("failures cost more than latency", [entry("b"), entry("c")], {"b": [(True, 5)] * 7 + [(False, 0)] * 3, "c": [(True, 80)] * 10}, True, ["c", "b"]),
    ("ties by node id", [entry("c"), entry("b")], {}, True, ["b", "c"]),
]


@pytest.mark.parametrize("name, entries, records, prefer_local, expected", CASES, ids=[c[0] for c in CASES])
def test_ranking(name, entries, records, prefer_local, expected):
    reg, h = Registry(ME), HealthTracker()
    for e in entries:
        reg._entries[e.key] = e
    for node, results in records.items():
        for ok, ms in results:
            h.record(node, "llm.chat", success=ok, latency_ms=ms)
    r = Router(reg, h, prefer_local=prefer_local, local_load_threshold=0.8)
    assert [e.node_id for e in r.rank(RouteRequest("llm.chat", (1, 0)))] == expected


def test_version_compatibility_and_params_filter():
    reg, h = Registry(ME), HealthTracker()
    for e in [entry("v10", version=(1, 0)), entry("v12", version=(1, 2)), entry("v20", version=(2, 0)), entry("big", version=(1, 3), params={"model": "70b"})]:
        reg._entries[e.key] = e
    r = Router(reg, h)
    assert {e.node_id for e in r.rank(RouteRequest("llm.chat", (1, 1)))} == {"v12", "big"}
    assert {e.node_id for e in r.rank(RouteRequest("llm.chat", (2, 0)))} == {"v20"}
    only70 = RouteRequest("llm.chat", (1, 0), params_filter=lambda p: p.get("model") == "70b")
    assert [e.node_id for e in r.rank(only70)] == ["big"]


def test_another_nodes_self_capability_is_never_a_route():
    reg, h = Registry(ME), HealthTracker()
    for e in [entry(ME, local=True), entry("peer")]:
        e.spec["trust_required"] = "self"
        reg._entries[e.key] = e
    other = entry("other")
    reg._entries[other.key] = other
    r = Router(reg, h)
    assert [e.node_id for e in r.rank(RouteRequest("llm.chat", (1, 0)))] == [ME, "other"]


def test_sticky_session_first_while_candidate():
    reg, h = Registry(ME), HealthTracker()
    for e in [entry("b"), entry("c")]:
        reg._entries[e.key] = e
    r = Router(reg, h)
    r.stick("s1", "c")
    assert r.rank(RouteRequest("llm.chat", (1, 0), session_id="s1"))[0].node_id == "c"
    assert r.rank(RouteRequest("llm.chat", (1, 0), session_id="other"))[0].node_id == "b"
    reg.remove_peer("c")
    assert r.rank(RouteRequest("llm.chat", (1, 0), session_id="s1"))[0].node_id == "b"
    r.release_session("s1")
    assert "s1" not in r._sticky


def test_quarantine_and_release(monkeypatch):
    h = HealthTracker(window=20, threshold=0.5, quarantine_seconds=60)
    for _ in range(MIN_SAMPLES - 1):
        h.record("b", "x", success=False, latency_ms=1)
    assert not h.is_quarantined("b", "x")  # too few calls to judge
    h.record("b", "x", success=False, latency_ms=1)
    assert h.is_quarantined("b", "x") and h.total_quarantines == 1
    reg = Registry(ME)
    e = CapabilityEntry("b", "x", (1, 0), {"max_concurrent": 1}, False, url="https://b")
    reg._entries[e.key] = e
    r = Router(reg, h)
    assert r.rank(RouteRequest("x", (1, 0))) == [] and r.candidates(RouteRequest("x", (1, 0)))[1] == 1
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 61)
    assert not h.is_quarantined("b", "x")  # released, with a clean window
    assert h.get("b", "x").success_rate == 1.0
    assert [x.node_id for x in r.rank(RouteRequest("x", (1, 0)))] == ["b"]


def test_params_predicates():
    from hearthnet.bus.capability import default_params_match

    assert default_params_match({"model": "a"}, {"model": "a", "ctx": 4096})
    assert default_params_match({"modalities": "text"}, {"modalities": ["text", "vision"]})
    assert not default_params_match({"model": "b"}, {"model": "a"})
    assert not default_params_match({"model": "a"}, {})
    reg, h = Registry(ME), HealthTracker()
    small, big = entry("s", params={"model": "smol", "ctx": 2048}), entry("b", params={"model": "big", "ctx": 32768})
    own = entry(ME, local=True, params={"ctx": 8192})
    def own_predicate(wanted, offered):  # a service's own rule: a minimum context, the rest as usual
        rest = {k: v for k, v in wanted.items() if k != "min_ctx"}
        return wanted.get("min_ctx", 0) <= offered["ctx"] and default_params_match(rest, offered)

    own.params_ok = own_predicate
    for e in (small, big, own):
        reg._entries[e.key] = e
    r = Router(reg, h)
    assert [e.node_id for e in r.rank(RouteRequest("llm.chat", (1, 0), params={"model": "big"}))] == ["b"]
    assert [e.node_id for e in r.rank(RouteRequest("llm.chat", (1, 0), params={"min_ctx": 4096}))] == [ME]
