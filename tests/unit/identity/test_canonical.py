import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from hearthnet.errors import HearthNetError
from hearthnet.identity.canonical import b64u_decode, b64u_encode, canonical_json, is_canonical, parse_json

# JSON values including the awkward parts of JCS: astral-plane keys, floats,
# control characters, big ints within the IEEE range.
_keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
)
json_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4), max_leaves=20)


@given(json_values)
@settings(max_examples=400)
def test_canonical_equals_reference_rfc8785(value):
    # Our fast path must be byte-identical to the reference implementation.
    assert canonical_json(value) == rfc8785.dumps(value)


@given(json_values)
@settings(max_examples=300)
def test_round_trip_is_stable(value):
    once = canonical_json(value)
    assert canonical_json(json.loads(once)) == once
    assert is_canonical(once)


def test_key_order_is_utf16_not_codepoint():
    # U+1F600 sorts after U+E000 by code point but before it by UTF-16 unit (D83D < E000).
    value = {"\U0001f600": 1, "\ue000": 2}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).decode().index("\U0001f600") < canonical_json(value).decode().index("\ue000")


def test_number_formatting():
    assert canonical_json({"a": 1.0, "b": 1e21, "c": 0.1}) == b'{"a":1,"b":1e+21,"c":0.1}'


def test_big_ints_are_doubles_only_when_exact():
    assert canonical_json(2.0**60) == b"1152921504606847000"
    assert canonical_json(1152921504606847000) == b"1152921504606847000"
    assert canonical_json(json.loads(canonical_json(2.0**53))) == canonical_json(2.0**53)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2**60, 2**60 + 1, {1: "int key"}, object()])
def test_uncanonicalisable_values_are_bad_request(bad):
    with pytest.raises(HearthNetError) as e:
        canonical_json({"v": bad} if not isinstance(bad, dict) else bad)
    assert e.value.code == "bad_request"


def test_not_canonical_detected():
    assert not is_canonical(b'{"b":1, "a":2}')
    assert not is_canonical(b'{"b":1,"a":2}')
    assert is_canonical(b'{"a":2,"b":1}')
    assert not is_canonical(b"not json")


def test_parse_json_errors_are_bad_request():
    with pytest.raises(HearthNetError) as e:
        parse_json(b"{oops")
    assert e.value.code == "bad_request"


@given(st.binary(max_size=64))
def test_b64u_round_trip(raw):
    assert b64u_decode(b64u_encode(raw)) == raw


def test_b64u_rejects_non_canonical():
    with pytest.raises(HearthNetError):
        b64u_decode("AB==")  # padded
    with pytest.raises(HearthNetError):
        b64u_decode("AB")  # non-zero trailing bits would be dropped silently


@pytest.mark.parametrize("raw, says", [
    (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),  # past Python's int digit limit: was a ValueError (500)
    (b'{"name": "\\ud800"}', "lone UTF-16 surrogate"),  # could not be encoded later, not even in the error answer
    (b'"\\udfff"', "lone UTF-16 surrogate"),
    (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_parse_json_refuses_what_no_later_step_could_handle(raw, says):
    with pytest.raises(HearthNetError) as e:
        parse_json(raw, what="call body")
    assert e.value.code == "bad_request" and says in e.value.message and e.value.message.startswith("call body")


def test_parse_json_keeps_paired_surrogates_and_big_ints_within_limits():
    assert parse_json(b'{"e": "\\ud83d\\ude00", "n": ' + b"9" * 4000 + b"}") == {"e": "\U0001F600", "n": int("9" * 4000)}
