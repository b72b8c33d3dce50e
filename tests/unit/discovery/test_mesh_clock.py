"""Mesh time learnt from peers' signed manifests."""

from hearthnet import clock
from hearthnet.discovery.mesh_clock import MeshClock


def test_offset_is_the_median_and_small_offsets_are_left_alone():
    mc = MeshClock()
    assert mc.offset() is None and mc.learn() is None
    now = clock.now()
    for node, ahead in (("a", 0.4), ("b", 0.6), ("c", 90.0)):
        mc.observe(node, clock.iso(now + ahead), rtt_ms=0)
    assert abs(mc.offset() - 0.6) < 0.2  # the median: one peer far off does not move it
    assert mc.learn() is None  # within the noise of round trips
    mc.forget("a")
    mc.forget("b")
    assert abs(mc.offset() - 90.0) < 0.5


def test_a_large_offset_corrects_this_processes_clock_once():
    mc = MeshClock()
    try:
        mc.observe("a", clock.iso(clock.now() + 300), rtt_ms=40)
        applied = mc.learn()
        assert applied is not None and abs(applied - 300) < 1
        assert abs(clock.offset() - applied) < 1e-9 and abs(mc.offset()) < 1  # the peers now agree with us
        assert mc.learn() is None
    finally:
        clock.set_offset(0.0)
