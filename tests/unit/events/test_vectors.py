"""Every event verifier in the project runs against the shared vectors in tests/vectors/events.json."""

import json
import sys
from pathlib import Path

import pytest

from hearthnet.errors import HearthNetError
from hearthnet.events.log import EventLog, event_hash, verify_event_envelope
from hearthnet.events.verify import verify_rows

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
DOC = json.loads((VECTORS / "events.json").read_text())
CASES = {c["name"]: c for c in DOC["cases"]}
CID = DOC["community_id"]
# Failures a stateless verifier must catch on its own (no log state needed).
STATELESS = {"invalid_signature", "event_invalid", "wrong_community", "payload_too_large"}


def test_vectors_are_reproducible():
    sys.path.insert(0, str(VECTORS))
    import make_event_vectors

    assert make_event_vectors.render() == (VECTORS / "events.json").read_text()


def test_vector_set_covers_the_required_cases():
    for name in ("bad_signature", "wrong_author", "tampered_field", "reordered", "duplicate", "forked", "revoked_author"):
        assert name in CASES


@pytest.mark.parametrize("name", sorted(CASES))
def test_event_log_append_received(name, tmp_path):
    case = CASES[name]
    with EventLog(tmp_path / "events.db", CID) as log:
        for env in case["given"]:
            log.append_received(env)
        expect = case["expect"]
        if isinstance(expect, dict):
            before = log.count(None)
            with pytest.raises(HearthNetError) as e:
                log.append_received(case["event"])
            assert e.value.code == expect["error"]
            assert log.count(None) == before  # nothing half-written
        else:
            assert log.append_received(case["event"]).result == expect
        for event_id, status in case["final"].items():
            assert log.status_of(event_id) == status, event_id
        ok, _ = log.integrity_check()
        assert ok


@pytest.mark.parametrize("name", sorted(CASES))
def test_stateless_verifier(name):
    case = CASES[name]
    expect = case["expect"]
    if isinstance(expect, dict) and expect["error"] in STATELESS:
        with pytest.raises(HearthNetError) as e:
            verify_event_envelope(case["event"], CID)
        assert e.value.code == expect["error"]
    else:
        ev = verify_event_envelope(case["event"], CID)
        assert ev.hash == event_hash(case["event"]["payload"].encode())


@pytest.mark.parametrize("name", sorted(CASES))
def test_reverifier(name):
    """The on-disk re-verifier (hearthnet log --verify) judges each envelope the same way on signatures."""
    case = CASES[name]
    env = case["event"]
    try:
        obj = json.loads(env["payload"])
        row = (obj["event_id"], obj["author"], obj["seq"], obj["lamport"], obj["event_type"], event_hash(env["payload"].encode()),
               obj["prev"], obj["wall_clock"], env["payload"], env["sig"])
    except (KeyError, ValueError):
        assert case["expect"] == {"error": "event_invalid"}
        return
    problems = verify_rows([row], obj.get("community_id", CID))
    sig_bad = isinstance(case["expect"], dict) and case["expect"]["error"] in {"invalid_signature", "event_invalid"} and name != "unknown_type"
    if name in {"bad_membership_data", "bad_market_data", "prev_on_first_event", "unknown_type", "oversized", "not_canonical"}:
        # Entry rules (schema, size, canonical form), not signature rules: nothing that broke
        # them was ever stored, and the signature pins the stored bytes from then on.
        return
    assert bool(problems) == sig_bad, problems
