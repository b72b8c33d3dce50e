import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearthnet.errors import HearthNetError
from hearthnet.identity import keys
from hearthnet.identity.canonical import b64u_decode, b64u_encode

DOMAIN = b"hearthnet/test/v1"


def test_ids_are_stable_and_parse(root_kp):
    assert root_kp.node_id.startswith("ed25519:") and len(root_kp.node_id) == 51
    assert keys.parse_node_id(root_kp.node_id) == root_kp.public_bytes
    assert keys.short_of(root_kp.node_id) == root_kp.short_id
    assert len(root_kp.short_id) == len("ed25519:XXXX-XXXX-XXXX-XXXX")


@pytest.mark.parametrize("bad", ["", "ed25519:", "ed25519:abc", "rsa:" + "A" * 43, "ed25519:" + "A" * 42 + "!", 42])
def test_bad_node_ids_rejected(bad):
    with pytest.raises(HearthNetError) as e:
        keys.parse_node_id(bad)
    assert e.value.code == "bad_request"


def test_sign_verify_and_domain_separation(root_kp):
    sig = root_kp.sign_bytes(b"hello", DOMAIN)
    assert keys.verify_bytes(root_kp.node_id, b"hello", sig, DOMAIN)
    assert not keys.verify_bytes(root_kp.node_id, b"hello", sig, b"hearthnet/other/v1")
    assert not keys.verify_bytes(keys.generate().node_id, b"hello", sig, DOMAIN)
    assert not keys.verify_bytes(root_kp.node_id, b"hello", "garbage", DOMAIN)
    assert not keys.verify_bytes("not-an-id", b"hello", sig, DOMAIN)


@given(st.binary(min_size=1, max_size=200), st.data())
@settings(max_examples=200)
def test_every_single_byte_change_is_rejected(payload, data):
    kp = keys.from_seed(b"\x01" * 32)
    sig = kp.sign_bytes(payload, DOMAIN)
    i = data.draw(st.integers(0, len(payload) - 1))
    delta = data.draw(st.integers(1, 255))
    tampered = payload[:i] + bytes([(payload[i] + delta) % 256]) + payload[i + 1 :]
    assert not keys.verify_bytes(kp.node_id, tampered, sig, DOMAIN)


def test_every_signature_byte_change_is_rejected(root_kp):
    payload = b'{"a":1}'
    sig = root_kp.sign_bytes(payload, DOMAIN)
    raw = b64u_decode(sig[8:])
    for i in range(len(raw)):
        bad = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]
        assert not keys.verify_bytes(root_kp.node_id, payload, "ed25519:" + b64u_encode(bad), DOMAIN)


def test_save_load_permissions(tmp_path, root_kp):
    p = tmp_path / "keys" / "node.key"
    keys.save(root_kp, p)
    assert oct(p.stat().st_mode & 0o777) == "0o600"
    assert oct(p.parent.stat().st_mode & 0o777) == "0o700"
    assert keys.load(p).node_id == root_kp.node_id


def test_world_readable_key_refused(tmp_path, root_kp):
    p = tmp_path / "keys" / "node.key"
    keys.save(root_kp, p)
    os.chmod(p, 0o644)
    with pytest.raises(HearthNetError) as e:
        keys.load(p)
    assert e.value.code == "keys_insecure"
    os.chmod(p, 0o600)
    os.chmod(p.parent, 0o755)
    with pytest.raises(HearthNetError) as e:
        keys.load(p)
    assert e.value.code == "keys_insecure"


def test_missing_and_invalid_keys(tmp_path, root_kp):
    with pytest.raises(HearthNetError) as e:
        keys.load(tmp_path / "k" / "node.key")
    assert e.value.code == "keys_missing"
    p = tmp_path / "k2" / "node.key"
    keys.save(root_kp, p)
    for body in ["not json", json.dumps({"kind": "ed25519-seed", "seed": "AAAA"}), json.dumps({"kind": "rsa", "seed": "x"})]:
        p.write_text(body)
        with pytest.raises(HearthNetError) as e:
            keys.load(p)
        assert e.value.code == "keys_invalid"
    # A valid seed whose stored node id belongs to another key.
    doc = {"kind": "ed25519-seed", "seed": b64u_encode(b"\x02" * 32), "node_id": root_kp.node_id}
    p.write_text(json.dumps(doc))
    with pytest.raises(HearthNetError) as e:
        keys.load(p)
    assert e.value.code == "keys_invalid"


def test_load_or_generate_never_overwrites(tmp_path):
    p = tmp_path / "keys" / "node.key"
    kp1, created1 = keys.load_or_generate(p)
    kp2, created2 = keys.load_or_generate(p)
    assert created1 and not created2 and kp1.node_id == kp2.node_id
