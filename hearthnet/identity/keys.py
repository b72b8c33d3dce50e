"""ed25519 node keys, node ids, and raw signing.

A node id is the public key: `ed25519:<base64url(32 bytes)>` (full, what is
signed and stored) or `ed25519:XXXX-XXXX-XXXX-XXXX` (short, for people: base32
of the key's blake3 hash). Key files hold the 32-byte seed as JSON, mode 0600 in
a 0700 directory, and are refused when others can read them.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import blake3
import nacl.exceptions
import nacl.signing

from hearthnet.errors import HearthNetError
from hearthnet.identity.canonical import b64u_decode, b64u_encode
from hearthnet.storage import atomic_write_text, ensure_private_dir

ID_PREFIX = "ed25519:"
SIG_PREFIX = "ed25519:"
_FULL_ID_LEN = len(ID_PREFIX) + 43
_SIG_LEN = len(SIG_PREFIX) + 86


@dataclass(frozen=True, slots=True)
class KeyPair:
    signing_key: nacl.signing.SigningKey
    verify_key: nacl.signing.VerifyKey
    node_id: str  # full
    short_id: str

    def sign_bytes(self, data: bytes, domain: bytes) -> str:
        """Signature over `domain || 0x00 || data`, as "ed25519:<base64url>"."""
        return SIG_PREFIX + b64u_encode(self.signing_key.sign(domain + b"\x00" + data).signature)

    @property
    def public_bytes(self) -> bytes:
        return bytes(self.verify_key)


def from_seed(seed: bytes) -> KeyPair:
    sk = nacl.signing.SigningKey(seed)
    vk = sk.verify_key
    return KeyPair(sk, vk, full_node_id(bytes(vk)), short_node_id(bytes(vk)))


def generate() -> KeyPair:
    return from_seed(bytes(nacl.signing.SigningKey.generate()))


def full_node_id(verify_key_bytes: bytes) -> str:
    return ID_PREFIX + b64u_encode(verify_key_bytes)


def short_node_id(verify_key_bytes: bytes) -> str:
    digest = base64.b32encode(blake3.blake3(verify_key_bytes).digest()[:10]).decode("ascii")
    return ID_PREFIX + "-".join(digest[i : i + 4] for i in range(0, 16, 4))


def short_of(node_id: str) -> str:
    """Short form of a full node id (no validation beyond parsing)."""
    return short_node_id(parse_node_id(node_id))


def parse_node_id(node_id: str) -> bytes:
    """The 32 public-key bytes of a *full* node id."""
    if not isinstance(node_id, str) or len(node_id) != _FULL_ID_LEN or not node_id.startswith(ID_PREFIX):
        raise HearthNetError("bad_request", f"not a full node id: {str(node_id)[:60]!r}")
    raw = b64u_decode(node_id[len(ID_PREFIX) :])
    if len(raw) != 32:
        raise HearthNetError("bad_request", f"not a full node id: {node_id[:60]!r}")
    return raw


@lru_cache(maxsize=4096)
def verify_key_from_full(node_id: str) -> nacl.signing.VerifyKey:
    return nacl.signing.VerifyKey(parse_node_id(node_id))


def verify_bytes(node_id: str, data: bytes, signature: str, domain: bytes) -> bool:
    """True when `signature` is `node_id`'s signature over `domain || 0x00 || data`."""
    if not isinstance(signature, str) or len(signature) != _SIG_LEN or not signature.startswith(SIG_PREFIX):
        return False
    try:
        raw = b64u_decode(signature[len(SIG_PREFIX) :])
        verify_key_from_full(node_id).verify(domain + b"\x00" + data, raw)
    except (HearthNetError, nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
        return False
    return True


# --- key files -------------------------------------------------------------------


def save(kp: KeyPair, path: Path) -> None:
    """Write the key to `path` (0600) inside a 0700 directory, atomically."""
    ensure_private_dir(path.parent)
    body = json.dumps({"kind": "ed25519-seed", "seed": b64u_encode(bytes(kp.signing_key)), "node_id": kp.node_id})
    atomic_write_text(path, body + "\n", mode=0o600)


def load(path: Path) -> KeyPair:
    """Load a key file; refuse a missing, unreadable, malformed or world-readable one."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise HearthNetError("keys_missing", f"no key at {path}: run `hearthnet init`", path=str(path)) from None
    if st.st_mode & 0o077 or path.parent.stat().st_mode & 0o077:
        raise HearthNetError(
            "keys_insecure",
            f"{path} is readable by other users; run: chmod 600 {path} && chmod 700 {path.parent}",
            path=str(path),
        )
    try:
        doc = json.loads(path.read_text("utf-8"))
        seed = b64u_decode(doc["seed"])
        if doc.get("kind") != "ed25519-seed" or len(seed) != 32:
            raise ValueError("wrong kind or seed length")
        kp = from_seed(seed)
    except (OSError, ValueError, KeyError, TypeError, HearthNetError) as exc:
        raise HearthNetError("keys_invalid", f"{path} is not a HearthNet ed25519 key file ({exc})", path=str(path)) from None
    if doc.get("node_id", kp.node_id) != kp.node_id:
        raise HearthNetError("keys_invalid", f"{path}: stored node id does not match the seed", path=str(path))
    return kp


def load_or_generate(path: Path) -> tuple[KeyPair, bool]:
    """(key, created). Generates only when no file exists; never overwrites."""
    if path.exists():
        return load(path), False
    kp = generate()
    save(kp, path)
    return kp, True


def key_file_private(path: Path) -> bool:
    try:
        return not (os.stat(path).st_mode & 0o077)
    except FileNotFoundError:
        return False


__all__ = [
    "ID_PREFIX",
    "KeyPair",
    "from_seed",
    "full_node_id",
    "generate",
    "key_file_private",
    "load",
    "load_or_generate",
    "parse_node_id",
    "save",
    "short_node_id",
    "short_of",
    "verify_bytes",
    "verify_key_from_full",
]
