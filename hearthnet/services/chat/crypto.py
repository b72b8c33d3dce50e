"""Message bodies as NaCl boxes between two node keys.

A node id is an ed25519 key; its X25519 form (libsodium's conversion) is the box key.
`Box(our secret, their public)` gives sender and recipient the same shared key, so
both can read what they exchanged and nobody else holding the replicated log can.
"""

from __future__ import annotations

import json
from typing import Any

import nacl.exceptions
import nacl.public

from hearthnet.errors import HearthNetError
from hearthnet.identity.canonical import b64u_decode, b64u_encode, canonical_json
from hearthnet.identity.keys import KeyPair, verify_key_from_full


def _box(kp: KeyPair, other: str) -> nacl.public.Box:
    try:
        theirs = verify_key_from_full(other).to_curve25519_public_key()
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise HearthNetError("bad_request", f"{other[:24]} is not a usable node key: {exc}") from None
    return nacl.public.Box(kp.signing_key.to_curve25519_private_key(), theirs)


def seal(kp: KeyPair, recipient: str, message: dict[str, Any]) -> str:
    """The message (canonical JSON) encrypted and authenticated for `recipient`, base64url (nonce included)."""
    return b64u_encode(bytes(_box(kp, recipient).encrypt(canonical_json(message))))


def unseal(kp: KeyPair, other: str, box: str) -> dict[str, Any]:
    """Open a box exchanged with `other` (either direction). Raises bad_request if it is not ours to read."""
    try:
        plain = _box(kp, other).decrypt(b64u_decode(box))
        out = json.loads(plain)
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise HearthNetError("bad_request", f"cannot open this message: {type(exc).__name__}") from None
    if not isinstance(out, dict):
        raise HearthNetError("bad_request", "message is not an object")
    return out


__all__ = ["seal", "unseal"]
