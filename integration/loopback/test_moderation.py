"""Moderation across nodes: trusted members hide and unhide posts and file adverts; the log keeps everything."""

from __future__ import annotations

import asyncio
import json

import pytest

from hearthnet.errors import HearthNetError
from nodeprocs import cli


def test_hide_and_unhide_follow_trust_and_replicate(mesh):
    async def scenario(m):
        a, b, c = await m.create(3)  # a: the anchor; b and c: members
        root = m.homes[0].root_key()
        post = await b.bus.call("market.post", (1, 0), {"category": "offer", "title": "Cheap generator, no questions"})
        pid = post["post_id"]
        cid = b.blobs.put(b"leaflet " * 100, filename="leaflet.txt").cid
        b.files.advertise(cid)
        await m.until(lambda: a.market_view.get(pid) is not None and c.market_view.get(pid) is not None and c.file_view.get(cid) is not None
                      and a.file_view.get(cid) is not None)

        async def listed(node, query="generator"):
            posts = (await node.bus.call("market.list", (1, 0), {"query": query}))["posts"]
            files = (await node.bus.call("file.list", (1, 0), {}))["files"]
            return [p["post_id"] for p in posts], [f["cid"] for f in files]

        # A member may not hide; the anchor may, with a reason.
        with pytest.raises(HearthNetError) as e:
            await c.bus.call("moderation.hide", (1, 0), {"kind": "market.post", "target": pid, "reason": "scam"})
        assert e.value.code == "forbidden"
        with pytest.raises(HearthNetError) as e:
            await a.bus.call("moderation.hide", (1, 0), {"kind": "market.post", "target": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "reason": "x"})
        assert e.value.code == "not_found", e.value.message
        hid = await a.bus.call("moderation.hide", (1, 0), {"kind": "market.post", "target": pid, "reason": "scam reported twice"})
        assert hid["hidden"] and hid["event_id"]
        await a.bus.call("moderation.hide", (1, 0), {"kind": "file", "target": cid, "reason": "spam"})
        await m.until(lambda: c.moderation.is_hidden("market.post", pid) and c.moderation.is_hidden("file", cid))
        assert await listed(c) == ([], [])
        assert c.market_view.get(pid) is not None  # out of the listing, still in the log and the view
        got = (await c.bus.call("moderation.list", (1, 0), {}))["hidden"]
        assert {(h["kind"], h["target"], h["reason"], h["by"]) for h in got} == {("market.post", pid, "scam reported twice", a.node_id),
                                                                                 ("file", cid, "spam", a.node_id)}
        # b still lists its own copy of the file (it holds it), not the post.
        assert (await listed(b))[0] == [] and cid in (await listed(b))[1]
        # c is promoted to trusted and unhides the post: visible everywhere again.
        a.event_log.append_local("community.member.promoted", {"node_id": c.node_id, "level": "trusted"}, root)
        await m.until(lambda: c.event_log.membership.level_of(c.node_id) == "trusted")
        await c.bus.call("moderation.unhide", (1, 0), {"kind": "market.post", "target": pid, "reason": "seller explained"})
        await m.until(lambda: not a.moderation.is_hidden("market.post", pid) and not b.moderation.is_hidden("market.post", pid))
        assert (await listed(a))[0] == [pid]
        # c is demoted: its unhide no longer counts, on every node alike, so the anchor's hide stands again.
        a.event_log.append_local("community.member.demoted", {"node_id": c.node_id, "level": "member"}, root)
        await m.until(lambda: all(n.moderation.is_hidden("market.post", pid) for n in (a, b, c)))
        assert (await listed(c))[0] == []
        # The CLI, against a's running node.
        rows = json.loads((await asyncio.to_thread(cli, m.base / "n0", "moderate", "list", "--json")).stdout)
        assert {(r["kind"], r["target"]) for r in rows} == {("market.post", pid), ("file", cid)}
        out = json.loads((await asyncio.to_thread(cli, m.base / "n0", "moderate", "unhide", "file", cid, "--reason", "fine after all", "--json")).stdout)
        assert out["hidden"] is False and out["event_id"]
        p = await asyncio.to_thread(cli, m.base / "n0", "moderate", "hide", "poster", cid, "--reason", "x", check=False)
        assert p.returncode == 2 and p.stderr.startswith("error[bad_request]")

    mesh.run(scenario)
