"""Chat across real nodes: private boxes in the shared log, direct / forwarded / queued delivery, receipts."""

from __future__ import annotations

import asyncio
import json

import pytest

from hearthnet.errors import HearthNetError
from hearthnet.services.chat.crypto import unseal
from nodeprocs import cli


async def send(node, to, body):
    return await node.bus.call("chat.send", (1, 0), {"to": to, "body": body})


async def history(node, peer=None):
    return await node.bus.call("chat.history", (1, 0), {"peer": peer} if peer else {})


def test_private_messages_reach_a_node_that_was_off(mesh):
    async def scenario(m):
        a, b, c = await m.create(3)
        await m.until(lambda: all(n.event_log.membership.is_member(x.node_id) for n in (a, b, c) for x in (a, b, c)))
        # Direct: b is up.
        r = await send(a, b.node_id, "Bread is ready at the mill")
        assert r["delivery"] == "direct"
        await m.until(lambda: a.chat_view.history(b.node_id)[-1].delivered_at is not None)
        got = (await history(b, a.node_id))["messages"]
        assert [(x["body"], x["from"], x["mine"]) for x in got] == [("Bread is ready at the mill", a.node_id, False)]
        assert (await history(b))["unread"] == {a.node_id: 1}
        # Private: c holds the event in its log but cannot open it, and the text is nowhere in clear.
        await m.until(lambda: any(e.event_type == "chat.message.sent" for e in c.event_log.replay()))
        ev = next(e for e in c.event_log.replay() if e.event_type == "chat.message.sent")
        assert "Bread" not in ev.payload and c.chat_view.history() == []
        with pytest.raises(HearthNetError):
            unseal(c.kp, a.node_id, ev.data["box"])
        # Forwarded: c is off; b carries the message; c gets it when it comes back and receipts it.
        await m.stop(2)
        r = await send(a, c.node_id, "Meeting moved to Thursday")
        assert r["delivery"] == "forwarded"
        assert a.chat_view.history(c.node_id)[-1].delivered_at is None
        c = await m.start(2)
        await m.link()
        await m.until(lambda: a.chat_view.history(c.node_id)[-1].delivered_at is not None, 20)
        got = (await history(c, a.node_id))["messages"]
        assert [x["body"] for x in got] == ["Meeting moved to Thursday"]
        assert (await c.bus.call("chat.read", (1, 0), {"peer": a.node_id}))["marked"] == 1
        assert (await history(c))["unread"] == {}
        await m.until(lambda: a.chat_view.history(c.node_id)[-1].read_at is not None)
        # Queued: nobody else is up; the message goes out when c returns.
        await m.stop(1)
        await m.stop(2)
        r = await send(a, c.node_id, "Are you there?")
        assert r["delivery"] == "queued"
        c = await m.start(2)
        await m.link()
        await m.until(lambda: a.chat_view.history(c.node_id)[-1].delivered_at is not None, 20)
        assert (await history(c))["unread"] == {a.node_id: 1}
        # Bad input changes nothing.
        before = a.event_log.count()
        for body, code in (({"to": c.node_id, "body": "x" * 4001}, "payload_too_large"),
                           ({"to": "ed25519:" + "A" * 43, "body": "hi"}, "not_member"),
                           ({"to": a.node_id, "body": "hi"}, "bad_request")):
            with pytest.raises(HearthNetError) as e:
                await a.bus.call("chat.send", (1, 0), body)
            assert e.value.code == code
        assert a.event_log.count() == before
        # The CLI against c's node.
        out = json.loads((await asyncio.to_thread(cli, m.base / "n2", "chat", "history", a.node_id, "--mark-read", "--json")).stdout)
        assert [x["body"] for x in out["messages"]] == ["Meeting moved to Thursday", "Are you there?"] and out["marked"] == 1
        sent = json.loads((await asyncio.to_thread(cli, m.base / "n2", "chat", "send", a.node_id, "Yes, here", "--json")).stdout)
        assert sent["delivery"] == "direct"
        p = await asyncio.to_thread(cli, m.base / "n2", "chat", "send", "nobody", "hi", check=False)
        assert p.returncode == 2 and p.stderr.startswith("error[bad_request]")

    mesh.run(scenario)
