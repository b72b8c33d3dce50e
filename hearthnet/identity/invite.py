"""Invites: signed, expiring, bound to the invitee's node id, redeemed at the node that issued them.

    hearthnet://v1/<base64url of the canonical JSON envelope {payload, sig}>

The payload names the community, the invitee's full node id, the level, the issuing
node (which signs it) and the endpoints where it is redeemed. Redeeming: the invitee
checks the invite, fetches and verifies the community manifest from an endpoint, asks
the issuing node to admit it (a signed request from its own key: only the named node
can), then syncs the log and joins (hearthnet.community.membership.join).
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ulid import ULID

from hearthnet import clock
from hearthnet import constants as C
from hearthnet.errors import HearthNetError, validation_message
from hearthnet.identity.canonical import b64u_decode, b64u_encode
from hearthnet.identity.envelope import Signed, open_signed, seal
from hearthnet.identity.keys import KeyPair
from hearthnet.storage import Error as SqliteError
from hearthnet.storage import IntegrityError, connect

_NODE = r"^ed25519:[A-Za-z0-9_-]{43}$"
_TS = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"


class Invite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    schema_version: Literal[1] = 1
    invite_id: str = Field(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")
    community_id: str = Field(min_length=8, max_length=64)
    community_name: str = Field(min_length=1, max_length=120)
    invitee: str = Field(pattern=_NODE)
    level: Literal["member", "trusted", "anchor"]
    inviter: str = Field(pattern=_NODE)
    issued_at: str = Field(pattern=_TS)
    expires_at: str = Field(pattern=_TS)
    single_use: bool = True
    endpoints: list[str] = Field(min_length=1, max_length=8)

    def is_expired(self, now: float | None = None) -> bool:
        return clock.parse_iso(self.expires_at) <= (clock.now() if now is None else now)


def make_invite(kp: KeyPair, *, community_id: str, community_name: str, invitee: str, level: str, endpoints: list[str],
                ttl_seconds: int = C.INVITE_DEFAULT_TTL_SECONDS, single_use: bool = True) -> tuple[Invite, str]:
    """(invite, its text). Raises bad_request for a bad invitee, endpoint or TTL."""
    if not 60 <= ttl_seconds <= C.INVITE_MAX_TTL_SECONDS:
        raise HearthNetError("bad_request", f"ttl must be 60..{C.INVITE_MAX_TTL_SECONDS} seconds, not {ttl_seconds}")
    for url in endpoints:
        if not url.startswith(("https://", "http://")):
            raise HearthNetError("bad_request", f"endpoint must be a node URL like https://10.0.0.2:7080, not {url!r}")
    now = clock.now()
    try:
        inv = Invite(invite_id=str(ULID()), community_id=community_id, community_name=community_name, invitee=invitee, level=level,  # type: ignore[arg-type]
                     inviter=kp.node_id, issued_at=clock.iso(now), expires_at=clock.iso(now + ttl_seconds), single_use=single_use,
                     endpoints=[u.rstrip("/") for u in endpoints])
    except ValidationError as exc:
        raise HearthNetError("bad_request", f"invite: {validation_message(exc)}") from None
    return inv, encode(seal(inv.model_dump(), kp, C.SIGN_DOMAIN_INVITE))


def encode(env: Signed) -> str:
    return C.INVITE_PREFIX + b64u_encode(json.dumps(env.as_dict(), separators=(",", ":")).encode())


def decode(text: str) -> tuple[Invite, Signed]:
    """Parse and verify an invite's text (its signature by the issuing node). Raises bad_request / invalid_signature."""
    text = text.strip()
    if len(text) > C.INVITE_MAX_CHARS:
        raise HearthNetError("payload_too_large", f"an invite is at most {C.INVITE_MAX_CHARS} characters", limit=C.INVITE_MAX_CHARS)
    if not text.startswith(C.INVITE_PREFIX):
        raise HearthNetError("bad_request", f"not a HearthNet invite (it starts with {C.INVITE_PREFIX})")
    try:
        env = json.loads(b64u_decode(text[len(C.INVITE_PREFIX):]))
    except (ValueError, UnicodeDecodeError):
        raise HearthNetError("bad_request", "invite text is damaged (not base64url JSON); copy it again") from None
    obj, signed = open_signed(env, C.SIGN_DOMAIN_INVITE, "inviter", max_bytes=C.INVITE_MAX_CHARS, what="invite")
    try:
        return Invite.model_validate(obj), signed
    except ValidationError as exc:
        raise HearthNetError("bad_request", f"invite: {validation_message(exc)}") from None


def check_for(inv: Invite, node_id: str, now: float | None = None) -> None:
    """The checks the invitee makes before any network: it is for this node, and not expired."""
    if inv.invitee != node_id:
        raise HearthNetError("forbidden", f"this invite is for node {inv.invitee[:24]}…, not this one ({node_id[:24]}…)")
    if inv.is_expired(now):
        raise HearthNetError("expired", f"this invite expired at {inv.expires_at}; ask for a new one")


def qr_png(text: str, box_size: int = 8) -> bytes:
    import qrcode
    from qrcode.image.pure import PyPNGImage

    img = qrcode.make(text, image_factory=PyPNGImage, box_size=box_size)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue()


class RedeemedInvites:
    """Single-use invites this node has honoured (`DATA_DIR/run/invites.db`): the first redemption
    claims the row; every later one, concurrent or not, finds it taken."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS redeemed (invite_id TEXT PRIMARY KEY, node_id TEXT NOT NULL, at REAL NOT NULL)")
        self._lock = threading.Lock()

    def claim(self, inv: Invite) -> bool:
        """True for the first claim of this invite id; False if it was claimed before."""
        with self._lock:
            try:
                self._db.execute("INSERT INTO redeemed VALUES (?, ?, ?)", (inv.invite_id, inv.invitee, clock.now()))
                return True
            except IntegrityError:
                return False
            except SqliteError as exc:
                raise HearthNetError("storage_error", f"invite store: {exc}") from None

    def release(self, inv: Invite) -> None:
        """Undo a claim whose admission failed, so the invite stays usable."""
        with self._lock:
            self._db.execute("DELETE FROM redeemed WHERE invite_id = ?", (inv.invite_id,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


__all__ = ["Invite", "RedeemedInvites", "check_for", "decode", "encode", "make_invite", "qr_png"]
