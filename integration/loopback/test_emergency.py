"""Emergency mode on a running node: probe targets go away -> offline -> capabilities that need the
internet are withdrawn (and peers stop seeing them); targets come back -> restored."""

from hearthnet.bus.capability import CapabilityDescriptor
from probe_servers import Http

WEATHER = CapabilityDescriptor(name="test.weather", version=(1, 0), request_schema={"type": "object"}, params={"requires_internet": True})
LOCAL = CapabilityDescriptor(name="test.local", version=(1, 0), request_schema={"type": "object"}, params={"requires_internet": False})
TIMING = {"probe_interval_online": 0.3, "probe_interval_offline": 0.15, "probe_timeout_seconds": 0.3, "debounce_seconds": 0.8}


def test_offline_withdraws_internet_capabilities_and_online_restores_them(mesh):
    uplink = Http()
    uplink.up()

    async def handler(body, ctx):
        return {"ok": True}

    def offered(node, name):
        return any(e.name == name and e.node_id == bridge_id for e in node.bus.registry.all())

    async def scenario(m):
        nonlocal bridge_id
        a, bridge = await m.create(2, extra={"emergency": {"probe_targets": [uplink.url], **TIMING}})
        bridge_id = bridge.node_id
        bridge.bus.register(WEATHER, handler)
        bridge.bus.register(LOCAL, handler)
        await m.until(lambda: offered(a, "test.weather"))
        await m.until(lambda: bridge.status()["emergency"]["last_probe"] is not None)
        assert bridge.status()["emergency"]["mode"] == "online"
        uplink.down()
        await m.until(lambda: bridge.status()["emergency"]["mode"] == "offline", 10)
        assert not offered(bridge, "test.weather") and offered(bridge, "test.local")
        await m.until(lambda: not offered(a, "test.weather"))
        assert offered(a, "test.local") and bridge.peers.stale_seconds < 60
        assert b'hearthnet_emergency_mode{state="offline"} 1.0' in bridge.metrics.render()
        uplink.up()
        await m.until(lambda: bridge.status()["emergency"]["mode"] == "online", 10)
        await m.until(lambda: offered(a, "test.weather"))
        r = await a.bus.call("test.weather", (1, 0), {})
        assert r == {"ok": True}

    bridge_id = ""
    try:
        mesh.run(scenario)
    finally:
        uplink.down()
