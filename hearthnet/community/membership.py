"""Adding a member (root key holder) and joining from another node.

Until signed invites exist, membership is the root's `community.member.joined`
event: the anchor adds a node id, the new node then `join`s from the anchor's
URL — fetches and verifies the community manifest, stores the genesis and syncs
the log. (The invite flow wraps exactly this: its redeem is this join.)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from typing import Any

from hearthnet.errors import HearthNetError
from hearthnet.events.log import EventLog
from hearthnet.home import Home
from hearthnet.events.community import verify_community_manifest
from hearthnet.identity.keys import parse_node_id
from hearthnet.storage import atomic_write_text
from hearthnet.transport.client import TransportClient
from hearthnet.transport.tls import PinStore


def add_member(home: Home, node_id: str, level: str = "member", display_name: str = "") -> dict[str, Any]:
    """Append the root-signed join of `node_id`. Idempotent for a current member."""
    parse_node_id(node_id)
    if level not in ("member", "trusted"):
        raise HearthNetError("bad_request", f"level must be member or trusted, not {level!r}")
    root = home.root_key()
    if root is None:
        raise HearthNetError("forbidden", "this data dir does not hold the community root key (run this on the anchor that created the community)")
    with home.open_log() as log:
        st = log.membership
        if node_id in st.revoked:
            raise HearthNetError("revoked", f"{node_id} was revoked; a revoked box joins again with a new key")
        if st.is_member(node_id):
            return {"node_id": node_id, "level": st.level_of(node_id), "event_id": None, "already_member": True}
        ev = log.append_local("community.member.joined", {"node_id": node_id, "level": level, "display_name": display_name}, root)
        return {"node_id": node_id, "level": level, "event_id": ev.event_id, "already_member": False}


@dataclass(frozen=True)
class JoinResult:
    community_id: str
    name: str
    events: int
    level: str
    already_joined: bool


def _save_peer(home: Home, url: str) -> None:
    p = home.data_dir / "peers.json"
    try:
        peers = [str(u) for u in json.loads(p.read_text())]
    except (OSError, ValueError, TypeError):
        peers = []
    if url not in peers:
        atomic_write_text(p, json.dumps(peers + [url]), mode=0o600)


async def join(home: Home, url: str) -> JoinResult:
    """Join the community served at `url`. On failure nothing of it is left behind."""
    from hearthnet.events.sync import sync_with
    from hearthnet.transport.tls import pin_first_contact

    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise HearthNetError("bad_request", f"join needs a node URL like https://10.0.0.2:7080, not {url!r}")
    kp = home.identity()
    pins = PinStore(home.data_dir / "pins.json")
    probe = TransportClient(kp, "", pins, timeout=10)
    try:
        if url.startswith("https://"):
            await pin_first_contact(probe, url)
        doc = await probe.get(url, "/community/manifest", signed=False)
    finally:
        await probe.close()
    cm, genesis = verify_community_manifest(doc)
    if home.community_id and home.community_id != cm.community_id:
        raise HearthNetError("already_exists", f"this node already belongs to community {home.community_id}")
    if not cm.is_member(kp.node_id):
        if cm.is_revoked(kp.node_id):
            raise HearthNetError("revoked", "this node's membership was revoked")
        raise HearthNetError("not_member", f"not a member yet: on the anchor run `hearthnet member add {kp.node_id}`")
    already = home.community_id == cm.community_id
    db = home.config.event_db_path(cm.community_id)
    created = not db.exists()
    client = TransportClient(kp, cm.community_id, pins, timeout=30)
    try:
        with EventLog(db, cm.community_id) as log:
            if created:
                log.append_received(genesis.envelope())
            await sync_with(client, log, url)
            if not log.membership.is_member(kp.node_id):
                raise HearthNetError("not_member", "synced, but the log does not list this node as a member")
            result = JoinResult(cm.community_id, cm.name, log.count(), log.membership.level_of(kp.node_id), already)
        if not already:
            home.remember_community(cm.community_id)
        _save_peer(home, url)
    except BaseException:
        if created:
            shutil.rmtree(db.parent, ignore_errors=True)
        raise
    finally:
        await client.close()
    return result


async def redeem_invite(home: Home, text: str) -> dict[str, Any]:
    """Redeem an invite: check it is for this node and current, verify the community manifest at
    an endpoint, have the issuing node admit this node, then join (sync the log). On failure
    nothing of the community is left here."""
    from hearthnet.identity.invite import check_for, decode
    from hearthnet.transport.tls import pin_first_contact

    kp = home.identity()
    inv, _ = decode(text)
    check_for(inv, kp.node_id)
    if home.community_id and home.community_id != inv.community_id:
        raise HearthNetError("already_exists", f"this node already belongs to community {home.community_id}")
    pins = PinStore(home.data_dir / "pins.json")
    last: HearthNetError | None = None
    for url in inv.endpoints:
        client = TransportClient(kp, inv.community_id, pins, timeout=15)
        try:
            if url.startswith("https://"):
                await pin_first_contact(client, url)
            cm, _ = verify_community_manifest(await client.get(url, "/community/manifest", signed=False), expected_community=inv.community_id)
            if not cm.is_member(inv.inviter):
                raise HearthNetError("not_member", "the node that issued this invite is no longer a member")
            admitted = await client.post(url, "/community/v1/redeem", {"invite": text, "display_name": home.config.identity.display_name})
        except HearthNetError as exc:
            if exc.code in ("partition", "timeout"):
                last = exc
                continue  # another address of the same node may answer
            raise
        finally:
            await client.close()
        if not admitted.get("member"):
            raise HearthNetError("not_member", f"the invite was accepted as a proposal ({admitted.get('signatures')} of {admitted.get('needed')} "
                                 f"signatures); once trusted members co-sign, run `hearthnet join {url}`")
        r = await join(home, url)
        return {"community_id": r.community_id, "name": r.name, "level": r.level, "events": r.events, "url": url,
                "already": bool(admitted.get("already")) or r.already_joined}
    assert last is not None
    raise last


__all__ = ["JoinResult", "add_member", "join", "redeem_invite"]
