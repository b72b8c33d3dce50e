"""Invites on their own: make, encode, decode, check, and the single-use store."""

import concurrent.futures

import pytest

from hearthnet import clock
from hearthnet.errors import HearthNetError
from hearthnet.identity import keys
from hearthnet.identity.invite import RedeemedInvites, check_for, decode, encode, make_invite


def test_an_invite_round_trips_and_binds_its_invitee():
    issuer, invitee = keys.generate(), keys.generate()
    inv, text = make_invite(issuer, community_id="c" * 43, community_name="Testdorf", invitee=invitee.node_id, level="member",
                            endpoints=["https://127.0.0.1:7080"])
    assert text.startswith("hearthnet://v1/") and decode(text)[0] == inv and encode(decode(text)[1]) == text
    check_for(inv, invitee.node_id)
    with pytest.raises(HearthNetError) as e:
        check_for(inv, issuer.node_id)
    assert e.value.code == "forbidden"
    with pytest.raises(HearthNetError) as e:
        check_for(inv, invitee.node_id, now=clock.parse_iso(inv.expires_at) + 1)
    assert e.value.code == "expired"


@pytest.mark.parametrize("text", ["hearthnet://v2/abc", "hearthnet://v1/!!!", "https://example/x", "hearthnet://v1/" + "A" * 40])
def test_a_bad_invite_text_is_one_clear_error(text):
    with pytest.raises(HearthNetError) as e:
        decode(text)
    assert e.value.code in ("bad_request", "invalid_signature")


def test_a_single_use_invite_is_claimed_once_even_concurrently(tmp_path):
    issuer = keys.generate()
    inv, _ = make_invite(issuer, community_id="c" * 43, community_name="T", invitee=keys.generate().node_id, level="member", endpoints=["https://127.0.0.1:7080"])
    store = RedeemedInvites(tmp_path / "invites.db")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.claim(inv), range(16)))
    assert results.count(True) == 1
    store.release(inv)  # an admission that failed gives the invite back
    assert store.claim(inv) and not store.claim(inv)
