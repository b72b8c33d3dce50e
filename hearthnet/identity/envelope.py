"""Signed envelopes: `{"payload": <canonical JSON text>, "sig": "ed25519:..."}`.

Every signed object (event, node manifest, community manifest, snapshot) travels
and is stored in this shape, byte for byte as it was signed: a receiver checks
that `payload` is canonical, then verifies the signature over exactly those
bytes, and only then trusts what it parses. Nothing is re-encoded in between.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hearthnet.errors import HearthNetError
from hearthnet.identity.canonical import canonical_json
from hearthnet.identity.keys import KeyPair, verify_bytes


@dataclass(frozen=True, slots=True)
class Signed:
    payload: str
    sig: str

    def as_dict(self) -> dict[str, str]:
        return {"payload": self.payload, "sig": self.sig}

    @property
    def payload_bytes(self) -> bytes:
        return self.payload.encode("utf-8")


def seal(obj: dict[str, Any], kp: KeyPair, domain: bytes) -> Signed:
    payload = canonical_json(obj)
    return Signed(payload.decode("utf-8"), kp.sign_bytes(payload, domain))


def envelope_shape(envelope: Any, *, max_bytes: int, what: str) -> Signed:
    """Check the outer shape and size of an envelope without parsing the payload."""
    if isinstance(envelope, Signed):
        env = envelope
    elif isinstance(envelope, dict) and set(envelope) == {"payload", "sig"}:
        payload, sig = envelope["payload"], envelope["sig"]
        if not isinstance(payload, str) or not isinstance(sig, str):
            raise HearthNetError("bad_request", f"{what}: payload and sig must be strings")
        env = Signed(payload, sig)
    else:
        raise HearthNetError("bad_request", f"{what}: expected an object with exactly 'payload' and 'sig'")
    if len(env.payload) > max_bytes:  # characters <= bytes: a cheap pre-check
        raise HearthNetError("payload_too_large", f"{what}: payload exceeds {max_bytes} bytes", limit=max_bytes)
    return env


def open_signed(
    envelope: Any,
    domain: bytes,
    signer_field: str,
    *,
    max_bytes: int = 1 << 20,
    what: str = "object",
) -> tuple[dict[str, Any], Signed]:
    """Verify an envelope and return (payload object, envelope).

    Raises bad_request (shape / not canonical), payload_too_large, invalid_signature.
    """
    env = envelope_shape(envelope, max_bytes=max_bytes, what=what)
    raw = env.payload_bytes
    if len(raw) > max_bytes:
        raise HearthNetError("payload_too_large", f"{what}: payload exceeds {max_bytes} bytes", limit=max_bytes)
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise HearthNetError("bad_request", f"{what}: payload is not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise HearthNetError("bad_request", f"{what}: payload must be a JSON object")
    if canonical_json(obj) != raw:
        raise HearthNetError("bad_request", f"{what}: payload is not in canonical (RFC 8785) form")
    signer = obj.get(signer_field)
    if not isinstance(signer, str) or not verify_bytes(signer, raw, env.sig, domain):
        raise HearthNetError("invalid_signature", f"{what}: signature does not verify for {str(signer)[:60]}")
    return obj, env


__all__ = ["Signed", "envelope_shape", "open_signed", "seal"]
