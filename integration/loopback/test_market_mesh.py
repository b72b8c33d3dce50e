"""Marketplace across nodes: a post made while a node is away appears there after it comes back."""


def test_a_post_made_during_a_partition_appears_everywhere_after_healing(mesh):
    async def scenario(m):
        a, b, c = await m.create(3)
        await m.stop(2)  # c is cut off
        r = await a.bus.call("market.post", (1, 0), {"category": "offer", "title": "Spare seed potatoes", "tags": ["garden"]})
        # b hears of it by sync; c cannot.
        await m.until(lambda: b.market_view.get(r["post_id"]) is not None)
        c = await m.start(2)
        await m.link()
        await m.until(lambda: c.market_view.get(r["post_id"]) is not None, 20)
        got = await c.bus.call("market.list", (1, 0), {"query": "potato"})
        assert [p["post_id"] for p in got["posts"]] == [r["post_id"]] and got["posts"][0]["author"] == a.node_id
        # Another node may not post in a's name: market.post is self-only.
        caps = [e for e in b.bus.registry.all() if e.name == "market.post" and e.node_id == a.node_id]
        assert caps and caps[0].spec.get("trust_required") == "self"

    mesh.run(scenario)
