"""Signed requests between nodes.

The caller signs the canonical JSON of
    {"method", "path" (with query), "body": blake3 of the body bytes, "ts", "nonce", "community"}
with the domain tag `hearthnet/rpc/v1`, and sends it in headers:

    X-HN-Node       full node id of the caller
    X-HN-Community  community id
    X-HN-Time       UTC timestamp (ms)
    X-HN-Nonce      16 random bytes, base64url
    X-HN-Signature  ed25519 signature

The server checks shape, signature, freshness (|now - ts| <= skew) and that the
nonce was never used (nonces are kept on disk for twice the skew window, so a
restart does not reopen a replay window).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import blake3

from hearthnet import clock
from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.identity.canonical import b64u_encode, canonical_json
from hearthnet.identity.keys import KeyPair, verify_bytes

SIGN_DOMAIN_RPC = C.SIGN_DOMAIN_RPC
H_NODE, H_COMMUNITY, H_TIME, H_NONCE, H_SIG = "x-hn-node", "x-hn-community", "x-hn-time", "x-hn-nonce", "x-hn-signature"


def signing_bytes(method: str, path: str, body: bytes, ts: str, nonce: str, community: str) -> bytes:
    return canonical_json(
        {"method": method.upper(), "path": path, "body": blake3.blake3(body).hexdigest(), "ts": ts, "nonce": nonce, "community": community}
    )


def sign_request(kp: KeyPair, community: str, method: str, path: str, body: bytes, *, ts: str | None = None, nonce: str | None = None) -> dict[str, str]:
    ts = ts or clock.iso()
    nonce = nonce or b64u_encode(os.urandom(16))
    sig = kp.sign_bytes(signing_bytes(method, path, body, ts, nonce, community), SIGN_DOMAIN_RPC)
    return {"X-HN-Node": kp.node_id, "X-HN-Community": community, "X-HN-Time": ts, "X-HN-Nonce": nonce, "X-HN-Signature": sig}


@dataclass(frozen=True)
class SignedCaller:
    node_id: str
    community: str
    ts: float
    nonce: str


def verify_request(headers: Mapping[str, str], method: str, path: str, body: bytes, *, community: str, skew_seconds: float) -> SignedCaller:
    """Check a signed request's headers. Raises bad_request, wrong_community, invalid_signature, stale_timestamp."""
    try:
        node, comm, ts, nonce, sig = (headers[h] for h in (H_NODE, H_COMMUNITY, H_TIME, H_NONCE, H_SIG))
    except KeyError as missing:
        raise HearthNetError("invalid_signature", f"unsigned request (missing header {missing.args[0]})") from None
    if not (8 <= len(nonce) <= 64):
        raise HearthNetError("bad_request", "nonce must be 8-64 characters")
    if comm != community:
        raise HearthNetError("wrong_community", "request is for another community")
    if not verify_bytes(node, signing_bytes(method, path, body, ts, nonce, comm), sig, SIGN_DOMAIN_RPC):
        raise HearthNetError("invalid_signature", "request signature does not verify")
    t = clock.parse_iso(ts)
    drift = t - clock.now()
    if abs(drift) > skew_seconds:
        raise HearthNetError(
            "stale_timestamp", f"request time {ts} is {drift:+.0f}s from this node's clock (allowed ±{skew_seconds:.0f}s)", drift_seconds=round(drift, 1)
        )
    return SignedCaller(node, comm, t, nonce)


__all__ = ["SIGN_DOMAIN_RPC", "SignedCaller", "sign_request", "signing_bytes", "verify_request"]
