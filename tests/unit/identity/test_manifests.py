import json

import pytest

from hearthnet import clock
from hearthnet.errors import HearthNetError
from hearthnet.identity import keys
from hearthnet.events.community import build_community_manifest, verify_community_manifest
from hearthnet.identity.envelope import seal
from hearthnet.identity.manifest import CapabilitySpec, Endpoint, HardwareSpec, build_node_manifest, verify_node_manifest


def _node_manifest(kp, cid="C" * 43, **kw):
    return build_node_manifest(
        kp,
        community_id=cid,
        display_name="hearth-1",
        profile="hearth",
        endpoints=[Endpoint(host="10.0.0.2", port=7080)],
        hardware=HardwareSpec(ram_gb=16, cpu_cores=4),
        capabilities=[CapabilitySpec(name="llm.chat", version="1.0", schema_hash="blake3:" + "0" * 64, params={"model": "smollm2"})],
        uptime_seconds=5,
        load={"cpu": 0.2},
        **kw,
    )


def test_node_manifest_round_trip(root_kp):
    env = _node_manifest(root_kp)
    m = verify_node_manifest(env.as_dict(), community_id="C" * 43)
    assert m.node_id == root_kp.node_id and m.capabilities[0].params["model"] == "smollm2"


def test_node_manifest_tampered_expired_wrong_community(root_kp):
    env = _node_manifest(root_kp).as_dict()
    bad = dict(env, payload=env["payload"].replace("hearth-1", "hearth-2"))
    with pytest.raises(HearthNetError) as e:
        verify_node_manifest(bad)
    assert e.value.code == "invalid_signature"
    with pytest.raises(HearthNetError) as e:
        verify_node_manifest(env, now=clock.now() + 3600)
    assert e.value.code == "expired"
    with pytest.raises(HearthNetError) as e:
        verify_node_manifest(env, community_id="D" * 43)
    assert e.value.code == "wrong_community"
    # Signed by one key but naming another node id.
    obj = json.loads(env["payload"])
    obj["node_id"] = keys.generate().node_id
    with pytest.raises(HearthNetError) as e:
        verify_node_manifest(seal(obj, root_kp, b"hearthnet/node-manifest/v1").as_dict())
    assert e.value.code == "invalid_signature"
    with pytest.raises(HearthNetError) as e:
        verify_node_manifest({"payload": "{}"})
    assert e.value.code == "bad_request"


def test_community_manifest(community):
    log, root, anchor = community
    env = build_community_manifest(log.membership, log.head(), anchor)
    cm, genesis = verify_community_manifest(env.as_dict(), expected_community=log.community_id)
    assert cm.name == "Testdorf" and cm.level_of(anchor.node_id) == "anchor" and cm.root_key == root.node_id
    assert genesis.event_type == "community.created"
    with pytest.raises(HearthNetError) as e:
        verify_community_manifest(env.as_dict(), expected_community="X" * 43)
    assert e.value.code == "wrong_community"
    with pytest.raises(HearthNetError) as e:
        verify_community_manifest(env.as_dict(), now=clock.now() + 10 * 3600)
    assert e.value.code == "expired"


def test_community_manifest_from_a_stranger_or_with_forged_genesis(community):
    log, root, anchor = community
    stranger = keys.generate()
    with pytest.raises(HearthNetError) as e:
        verify_community_manifest(build_community_manifest(log.membership, log.head(), stranger).as_dict())
    assert e.value.code == "not_member"
    obj = json.loads(build_community_manifest(log.membership, log.head(), anchor).payload)
    obj["name"] = "Evil twin"  # the genesis still names Testdorf
    with pytest.raises(HearthNetError) as e:
        verify_community_manifest(seal(obj, anchor, b"hearthnet/community-manifest/v1").as_dict())
    assert e.value.code == "bad_request"
