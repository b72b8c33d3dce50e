"""Signed requests on their own (verify_request) and the rate limiter: the checks of contract §10.1 in order."""

import pytest

from hearthnet import clock
from hearthnet.errors import HearthNetError
from hearthnet.identity import keys
from hearthnet.transport.ratelimit import RateLimiter
from hearthnet.transport.signing import sign_request, verify_request

COMMUNITY = "c" * 43


def headers(kp, path="/bus/v1/call?x=a%2Cb", body=b"{}", **kw):
    return {k.lower(): v for k, v in sign_request(kp, COMMUNITY, "POST", path, body, **kw).items()}


def verify(h, path="/bus/v1/call?x=a%2Cb", body=b"{}", community=COMMUNITY):
    return verify_request(h, "POST", path, body, community=community, skew_seconds=120)


def test_a_good_signature_names_the_caller():
    kp = keys.generate()
    got = verify(headers(kp))
    assert got.node_id == kp.node_id and got.community == COMMUNITY


@pytest.mark.parametrize("change, code", [
    (lambda h: h.pop("x-hn-signature"), "invalid_signature"),  # unsigned
    (lambda h: h.update({"x-hn-nonce": "short"}), "bad_request"),  # nonce length, before the signature
    (lambda h: h.update({"x-hn-community": "other"}), "wrong_community"),  # community, before the signature
    (lambda h: h.update({"x-hn-node": keys.generate().node_id}), "invalid_signature"),  # someone else's key
])
def test_each_check_answers_its_own_code(change, code):
    h = headers(keys.generate())
    change(h)
    with pytest.raises(HearthNetError) as e:
        verify(h)
    assert e.value.code == code


def test_body_path_and_method_are_all_covered():
    kp = keys.generate()
    for path, body, method in (("/bus/v1/call?x=a%2Cb", b"{ }", "POST"), ("/bus/v1/call?x=a,b", b"{}", "POST"), ("/bus/v1/call?x=a%2Cb", b"{}", "PUT")):
        with pytest.raises(HearthNetError) as e:
            verify_request(headers(kp), method, path, body, community=COMMUNITY, skew_seconds=120)
        assert e.value.code == "invalid_signature"


def test_time_is_checked_after_the_signature():
    kp = keys.generate()
    with pytest.raises(HearthNetError) as e:
        verify(headers(kp, ts=clock.iso(clock.now() - 600)))
    assert e.value.code == "stale_timestamp" and e.value.details["drift_seconds"] < -500
    with pytest.raises(HearthNetError) as e:
        verify(headers(kp, ts="yesterday"))
    assert e.value.code == "bad_request"


def test_rate_limiter_soft_hard_and_per_capability_budgets():
    rl = RateLimiter(soft_per_cap=1, hard_per_cap=3, soft_total=100, hard_total=5)
    a = [rl.check("peer", "echo.ping") for _ in range(4)]
    assert a[0].allowed and not a[0].soft_exceeded and any(c.soft_exceeded for c in a[1:3]) and not a[3].allowed and a[3].retry_after_ms > 0
    assert rl.check("peer", "market.list").allowed  # another capability has its own budget …
    assert rl.check("other-peer", "echo.ping").allowed  # … and so does another peer
    assert not all(rl.check("peer", f"cap.{i}").allowed for i in range(3))  # the all-capabilities total still binds
