"""The emergency detector against real probe targets on loopback (HTTP and DNS servers the test starts and stops)."""

import asyncio
import contextlib
import time

import pytest

from hearthnet.config import EmergencyConfig
from hearthnet.emergency.detector import Detector, reading
from hearthnet.emergency.probes import parse_target, probe
from hearthnet.emergency.state import StateBus
from hearthnet.errors import HearthNetError
from probe_servers import Dns, Http

TIMING = {"probe_interval_online": 0.4, "probe_interval_offline": 0.15, "probe_timeout_seconds": 0.3, "debounce_seconds": 1.0}
SLACK = 0.6  # scheduling on a busy 2-core machine


@contextlib.asynccontextmanager
async def running(targets, **timing):
    changes = []
    bus = StateBus()
    det = Detector(EmergencyConfig(probe_targets=targets, **{**TIMING, **timing}), bus, on_change=lambda old, new: changes.append((time.monotonic(), old, new)))
    task = asyncio.create_task(det.run())
    try:
        yield bus, changes
    finally:
        await det.shutdown()
        await asyncio.wait_for(task, 5)


async def until(pred, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not reached in time")


def test_targets_parse_and_bad_ones_are_config_errors():
    assert parse_target("https://example.org/x").kind == "http" and parse_target("dns://10.0.0.1/example.org").port == 53
    assert parse_target("example.org").kind == "resolve" and parse_target("dns:one.one.one.one").host == "one.one.one.one"
    for bad in ("ftp://x/y", "dns://10.0.0.1", "not a host", "", "1.1.1.1", "dns:8.8.8.8"):
        with pytest.raises(HearthNetError) as e:
            parse_target(bad)
        assert e.value.code == "config_invalid"
    with pytest.raises(ValueError):  # the config loader refuses them too, before a node starts
        EmergencyConfig(probe_targets=["1.1.1.1"])
    assert reading({"a": True, "b": True}) == "online" and reading({"a": True, "b": False}) == "degraded" and reading({"a": False}) == "offline"


def test_no_targets_means_no_probing_and_online():
    async def go():
        async with running([]) as (bus, changes):
            await asyncio.sleep(0.3)
            assert bus.current().mode == "online" and bus.current().last_probe is None and changes == []

    asyncio.run(go())


def test_flips_offline_and_back_within_the_debounce_bounds():
    srv = Http()
    srv.up()

    async def go():
        async with running([srv.url]) as (bus, changes):
            await until(lambda: bus.current().last_probe is not None, 3)
            assert bus.current().mode == "online"
            gone = time.monotonic()
            srv.down()
            await until(lambda: changes, 5)
            t, old, new = changes[0]
            assert (old, new) == ("online", "offline")
            d = TIMING["debounce_seconds"]
            assert d <= t - gone <= d + TIMING["probe_interval_online"] + TIMING["probe_timeout_seconds"] + SLACK
            back = time.monotonic()
            srv.up()
            await until(lambda: len(changes) == 2, 5)
            t, old, new = changes[1]
            assert (old, new) == ("offline", "online")
            assert d <= t - back <= d + TIMING["probe_interval_offline"] + TIMING["probe_timeout_seconds"] + SLACK

    try:
        asyncio.run(go())
    finally:
        srv.down()


def test_a_blip_shorter_than_the_debounce_flips_nothing():
    srv = Http()
    srv.up()

    async def go():
        async with running([srv.url], debounce_seconds=2.0, probe_interval_online=0.2) as (bus, changes):
            await until(lambda: bus.current().last_probe is not None, 3)
            srv.down()
            await until(lambda: bus.current().probe_results.get(srv.url) is False, 3)  # the blip was seen
            srv.up()
            await asyncio.sleep(2.5)
            assert changes == [] and bus.current().mode == "online"

    try:
        asyncio.run(go())
    finally:
        srv.down()


def test_some_targets_away_is_degraded_and_dns_targets_count():
    srv, ns = Http(), Dns()
    srv.up()

    async def go():
        target = f"dns://127.0.0.1:{ns.port}/village.example"
        assert await probe(parse_target(target), 1.0)
        async with running([srv.url, target]) as (bus, changes):
            await until(lambda: bus.current().last_probe is not None, 3)
            assert bus.current().probe_results == {srv.url: True, target: True}
            srv.down()
            await until(lambda: changes, 5)
            assert changes[0][1:] == ("online", "degraded")
            ns.close()
            await until(lambda: len(changes) == 2, 5)
            assert changes[1][1:] == ("degraded", "offline")
        assert not await probe(parse_target(target), 0.3)

    try:
        asyncio.run(go())
    finally:
        srv.down()
        if not ns.stop.is_set():
            ns.close()


def test_the_debounce_rule_on_given_times_without_sleeping():
    from hearthnet.emergency.detector import Debounce

    d = Debounce("online", 30.0)
    d.observe("online", "offline", now=100.0)
    assert d.pending("online") and d.due_at("online") == 130.0
    assert d.due("online", 129.9) is None and d.due("online", 130.0) == "offline"
    d.observe("online", "offline", now=110.0)  # the same reading again does not restart the wait
    assert d.due_at("online") == 130.0
    d.observe("online", "degraded", now=120.0)  # a different one does
    assert d.due_at("online") == 150.0 and d.due("online", 149.0) is None
    d.observe("online", "online", now=125.0)  # a blip: back to the mode before the debounce passed
    assert not d.pending("online") and d.due("online", 1000.0) is None
    d.observe("online", "offline", now=200.0)
    assert d.due("online", 230.0) == "offline"
    d.flipped()
    assert d.due("offline", 1000.0) is None and not d.pending("offline")
    zero = Debounce("online", 0.0)
    zero.observe("online", "offline", now=5.0)
    assert zero.due("online", 5.0) == "offline"  # a debounce of 0 flips at the reading itself
