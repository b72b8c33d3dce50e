"""The one canonical-JSON function (RFC 8785, JCS) and the encodings around it.

Everything HearthNet signs is the JCS form of a JSON value: keys sorted by UTF-16
code units, no whitespace, UTF-8, ECMAScript number formatting. Parsing then
re-canonicalising gives the same bytes, which is how received objects are
checked for canonical form before their signature is.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import blake3
import rfc8785

from hearthnet.errors import HearthNetError


_SAFE_INT = 2**53 - 1


def _plain(obj: Any) -> bool:
    """True when json.dumps(sort_keys) already produces the JCS bytes of `obj`.

    That holds when there are no floats (JCS formats numbers the ECMAScript way),
    every int is within the IEEE-754 exact range, and every key is ASCII (JCS sorts
    keys by UTF-16 code units, Python by code points: they differ only beyond the BMP).
    String escaping is the same in both for ensure_ascii=False.
    """
    stack = [obj]
    pop, push = stack.pop, stack.append
    while stack:
        o = pop()
        t = type(o)
        if t is str or t is bool or o is None:
            continue
        if t is int:
            if not -_SAFE_INT <= o <= _SAFE_INT:
                return False
        elif t is dict:
            for k, v in o.items():
                if type(k) is not str or not k.isascii():
                    return False
                if type(v) is not str:
                    push(v)
        elif t is list:
            stack.extend(o)
        else:
            return False
    return True


def _ints_as_doubles(obj: Any) -> Any:
    """JSON numbers are IEEE doubles. An int beyond 2**53 (what parsing a large
    number gives) is taken as its double only when its digits are already that
    double's JCS text, so nothing is silently rounded; any other is refused."""
    t = type(obj)
    if t is int and not -_SAFE_INT <= obj <= _SAFE_INT:
        f = float(obj)
        if rfc8785.dumps(f) != str(obj).encode():
            raise ValueError(f"integer {obj} has no exact JSON number form")
        return f
    if t is dict:
        return {k: _ints_as_doubles(v) for k, v in obj.items()}
    if t is list:
        return [_ints_as_doubles(v) for v in obj]
    return obj


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 bytes of `obj`. Raises HearthNetError("bad_request") for values JSON cannot hold exactly."""
    try:
        if _plain(obj):
            # Fast path, byte-identical to rfc8785 (tests/unit/identity/test_canonical.py proves it).
            return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return rfc8785.dumps(_ints_as_doubles(obj))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise HearthNetError("bad_request", f"value cannot be canonicalised: {exc}") from exc


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json(data: bytes | str, *, what: str = "body") -> Any:
    """json.loads that raises HearthNetError("bad_request") for anything that is not plain JSON text:
    bad syntax, bad UTF-8, nesting too deep, an integer past Python's digit limit, and a lone
    UTF-16 surrogate (`"\\ud800"`), which no later step could encode (not even an error answer)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        value = json.loads(data)
        if _SURROGATE_ESCAPE.search(raw):  # paired surrogates decode to one character; a lone one stays
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise HearthNetError("bad_request", f"{what} holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError is a ValueError, like an over-long integer
        raise HearthNetError("bad_request", f"{what} is not valid JSON: {str(exc)[:200]}") from None
    return value


def is_canonical(text: bytes) -> bool:
    """True when `text` is exactly the JCS encoding of the value it parses to."""
    try:
        return canonical_json(json.loads(text)) == text
    except (HearthNetError, json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return False


def b64u_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Strict unpadded base64url: a non-canonical encoding is rejected, not normalised."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise HearthNetError("bad_request", f"not base64url: {text[:40]!r}") from exc
    if b64u_encode(raw) != text:
        raise HearthNetError("bad_request", f"not canonical base64url: {text[:40]!r}")
    return raw


def blake3_hex(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()


__all__ = ["b64u_decode", "b64u_encode", "blake3_hex", "canonical_json", "is_canonical", "parse_json"]
