"""Invites and revocation across real nodes: create → redeem → call; single use under concurrency; revoke."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from eventgen import post_data
from hearthnet import clock
from hearthnet import constants as C
from hearthnet.identity.invite import Invite, encode, make_invite
from hearthnet.errors import HearthNetError
from hearthnet.home import Home
from hearthnet.identity.envelope import seal
from hearthnet.transport.client import TransportClient
from hearthnet.transport.tls import PinStore, pin_first_contact
from nodeprocs import cli


async def run(d, *args, check=True):
    return await asyncio.to_thread(cli, d, *args, check=check, timeout=60)


def test_invite_redeem_call_then_revoke(mesh, tmp_path):
    async def scenario(m):
        (a,) = await m.create(1)
        d1, d2 = m.base / "n1", m.base / "n2"
        await run(d1, "init", "--name", "bakery")
        await run(d2, "init")
        id1 = json.loads((await run(d1, "id", "--json")).stdout)["node_id"]
        qr = tmp_path / "invite.png"
        out = json.loads((await run(m.base / "n0", "invite", "create", id1, "--qr", str(qr), "--json")).stdout)
        text = out["invite"]
        assert text.startswith("hearthnet://v1/") and qr.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out["endpoints"] == [a.url]
        assert any(e.event_type == "community.member.invited" and e.data["node_id"] == id1 for e in a.event_log.replay())

        # Bad invites: each one clear line, and the box is left as it was (no community).
        def tampered(t: str) -> str:
            i = len(t) // 2
            return t[:i] + ("A" if t[i] != "A" else "B") + t[i + 1:]

        kp = m.homes[0].identity()
        old = Invite(**{**make_invite(kp, community_id=a.community_id, community_name="Loopdorf", invitee=id1, level="member",
                                      endpoints=[a.url])[0].model_dump(), "expires_at": clock.iso(clock.now() - 5)})
        expired = encode(seal(old.model_dump(), kp, C.SIGN_DOMAIN_INVITE))
        for d, t, code in ((d1, tampered(text), ("invalid_signature", "bad_request")), (d2, text, ("forbidden",)),
                           (d1, expired, ("expired",)), (d1, "hearthnet://v2/xyz", ("bad_request",))):
            p = await run(d, "invite", "redeem", t, check=False)
            assert p.returncode != 0 and p.stderr.split("]")[0].removeprefix("error[") in code, p.stderr
            assert len(p.stderr.strip().splitlines()) == 1
            assert Home.open(d).community_id is None and not (d / "communities").exists()

        # Redeem: admitted by the issuing node, log synced, and the new member's calls work.
        res = json.loads((await run(d1, "invite", "redeem", text, "--json")).stdout)
        assert res["community_id"] == a.community_id and res["level"] == "member" and not res["already"]
        again = json.loads((await run(d1, "invite", "redeem", text, "--json")).stdout)
        assert again["already"]
        b = await m.adopt(1)
        got = await b.client.call_remote(a.url, "echo.ping", "1.0", {"message": "hi"}, timeout=10, trace_id="", session_id=None)
        assert got["node_id"] == a.node_id
        assert a.event_log.membership.members[b.node_id].display_name == "bakery"

        # Revoke: the open stream ends, new calls are refused, new events are void everywhere.
        stream = b.client.stream_remote(a.url, "echo.count", "1.0", {"n": 200, "interval_ms": 50}, timeout=60, trace_id="", session_id=None)
        first = await stream.__anext__()
        assert first["event"] == "chunk"
        t0 = time.monotonic()
        r = json.loads((await run(m.base / "n0", "member", "revoke", b.node_id, "--reason", "sold the box", "--json")).stdout)
        assert r["effective"]
        rest = [f async for f in stream]  # frames sent before the revocation, then one error frame, even while the caller read nothing
        assert rest[-1] == {"event": "error", "data": {"code": "revoked", "message": "the caller's membership was revoked"}}
        assert all(f["event"] == "chunk" for f in rest[:-1]) and len(rest) < 199
        assert time.monotonic() - t0 < 10
        with pytest.raises(HearthNetError) as e:
            await b.client.call_remote(a.url, "echo.ping", "1.0", {}, timeout=10, trace_id="", session_id=None)
        assert e.value.code == "revoked"
        await m.until(lambda: b.node_id in b.event_log.membership.revoked)  # b hears of it too
        with pytest.raises(HearthNetError) as e:
            b.event_log.append_local("market.post.created", post_data(901), b.kp)
        assert e.value.code == "revoked"

    mesh.run(scenario)


def test_a_single_use_invite_admits_exactly_once_under_concurrency(mesh):
    async def scenario(m):
        (a,) = await m.create(1)
        d = m.base / "n1"
        await run(d, "init")
        h = Home.open(d)
        kp = h.identity()
        text = (await a.bus.call("community.invite", (1, 0), {"node_id": kp.node_id}))["invite"]
        pins = PinStore(d / "pins.json")
        clients = [TransportClient(kp, a.community_id, pins) for _ in range(8)]
        await pin_first_contact(clients[0], a.url)

        async def one(c):
            try:
                return await c.post(a.url, "/community/v1/redeem", {"invite": text})
            except HearthNetError as exc:
                return exc.code

        try:
            results = await asyncio.gather(*(one(c) for c in clients))
        finally:
            for c in clients:
                await c.close()
        admitted = [r for r in results if isinstance(r, dict) and not r["already"]]
        assert len(admitted) == 1, results
        assert all(r == "conflict" or (isinstance(r, dict) and r["already"]) for r in results if r is not admitted[0]), results
        joins = [e for e in a.event_log.replay() if e.event_type == "community.member.joined" and e.data["node_id"] == kp.node_id]
        assert len(joins) == 1
        # Redeemed only where it was issued: another member node refuses it.
        d2 = m.base / "n2"
        await run(d2, "init")
        k2 = Home.open(d2).identity()
        text2 = (await a.bus.call("community.invite", (1, 0), {"node_id": k2.node_id}))["invite"]
        await run(d, "join", a.url)
        b = await m.adopt(1)
        c2 = TransportClient(k2, a.community_id, PinStore(d2 / "pins.json"))
        try:
            await pin_first_contact(c2, b.url)
            with pytest.raises(HearthNetError) as e:
                await c2.post(b.url, "/community/v1/redeem", {"invite": text2})
            assert e.value.code == "forbidden"
        finally:
            await c2.close()

    mesh.run(scenario)


def test_revocation_latency_across_five_nodes(mesh):
    """Seconds from the revocation's append on the anchor until every other node refuses the revoked node."""

    async def scenario(m):
        nodes = await m.create(5)
        a, victim, others = nodes[0], nodes[4], nodes[1:4]
        await m.until(lambda: all(n.event_log.membership.is_member(victim.node_id) for n in nodes))
        for n in nodes[:4]:
            await victim.client.call_remote(n.url, "echo.ping", "1.0", {}, timeout=10, trace_id="", session_id=None)
        t0 = time.monotonic()
        await a.bus.call("community.revoke", (1, 0), {"node_id": victim.node_id, "reason": "lost"})
        refused: dict[str, float] = {}
        while len(refused) < 4 and time.monotonic() - t0 < 30:
            for n in nodes[:4]:
                if n.node_id in refused:
                    continue
                try:
                    await victim.client.call_remote(n.url, "echo.ping", "1.0", {}, timeout=5, trace_id="", session_id=None)
                except HearthNetError as exc:
                    if exc.code == "revoked":
                        refused[n.node_id] = time.monotonic() - t0
            await asyncio.sleep(0.02)
        assert len(refused) == 4, refused
        worst = max(refused.values())
        print(f"\nrevocation latency across 5 nodes (sync interval 0.3 s): worst {worst:.2f} s, "
              f"per node {sorted(round(v, 2) for v in refused.values())}")
        assert all(n.node_id in refused for n in others)

    mesh.run(scenario)
