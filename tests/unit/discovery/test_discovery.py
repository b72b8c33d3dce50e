import json

from hearthnet.discovery.mdns import community_short
from hearthnet.discovery.peers import PeerRegistry
from hearthnet.discovery.udp import UdpDiscovery

CID = "C" * 43


def _udp(seen):
    return UdpDiscovery(node_id="ed25519:me", community_id=CID, profile="hearth", url="https://10.0.0.1:7080", group="239.255.42.42", port=42424,
                        on_peer=lambda url, nid, rev: seen.append((url, nid, rev)) or True, interval=30)


def test_udp_announcements_filtered():
    seen = []
    u = _udp(seen)
    good = {"v": 1, "id": "ed25519:peer", "cs": community_short(CID), "url": "https://10.0.0.2:7080", "profile": "spark", "rev": 3}
    u._handle(json.dumps(good).encode())
    assert seen == [("https://10.0.0.2:7080", "ed25519:peer", 3)]
    for bad in [
        {**good, "cs": "another-community"},
        {**good, "id": "ed25519:me"},  # ourselves
        {**good, "v": 2},
        {**good, "url": "ftp://x"},
        {**good, "url": "https://" + "x" * 300},
    ]:
        u._handle(json.dumps(bad).encode())
    for junk in [b"", b"not json", b"[1,2]", b'{"v":1}', b"\xff\xfe"]:
        u._handle(junk)
    assert len(seen) == 1


def test_peer_registry_prunes_announced_but_keeps_configured():
    r = PeerRegistry("ed25519:me")
    r.seen("https://10.0.0.2:7080", "udp", "ed25519:a")
    r.seen("https://10.0.0.3:7080", "static")
    r.stale_seconds = -1  # everything is stale now
    gone = r.prune_stale()
    assert [g.url for g in gone] == ["https://10.0.0.2:7080"]
    assert [p.url for p in r.all()] == ["https://10.0.0.3:7080"]
    r.set_pruning_aggressive(True)
    assert r.stale_seconds == 30
