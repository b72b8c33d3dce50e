"""Marketplace across nodes: a post made while a node is away appears there after it comes back; the CLI."""

import asyncio
import json

from nodeprocs import cli


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


def test_the_market_cli_posts_lists_updates_and_ends_posts_across_nodes(mesh):
    async def scenario(m):
        async def run(i: int, *args: str, check: bool = True):
            return await asyncio.to_thread(cli, m.base / f"n{i}", "market", *args, check=check, timeout=60)

        a, b = await m.create(2)
        out = json.loads((await run(0, "post", "offer", "Spare seed potatoes", "--body", "20 kg", "--tag", "garden", "--json")).stdout)
        pid = out["post_id"]
        await m.until(lambda: b.market_view.get(pid) is not None)
        # b lists and searches a's post from its own replica.
        listed = json.loads((await run(1, "list", "--search", "potato", "--json")).stdout)
        assert [p["post_id"] for p in listed] == [pid] and listed[0]["author"] == a.node_id and listed[0]["tags"] == ["garden"]
        assert json.loads((await run(1, "list", "--mine", "--json")).stdout) == []
        assert json.loads((await run(1, "list", "--category", "request", "--json")).stdout) == []
        # Only the author changes a post: b is refused, a edits and then ends it.
        p = await run(1, "update", pid, "--title", "Mine now", check=False)
        assert p.returncode != 0 and p.stderr.startswith("error[forbidden]") and len(p.stderr.strip().splitlines()) == 1
        await run(0, "update", pid, "--title", "Seed potatoes (10 kg left)")
        await run(0, "expire", pid)
        await m.until(lambda: b.market_view.get(pid) is not None and b.market_view.get(pid).expired == "author")
        assert json.loads((await run(1, "list", "--json")).stdout) == []
        ended = json.loads((await run(1, "list", "--all", "--json")).stdout)
        assert [(p["title"], p["expired"]) for p in ended] == [("Seed potatoes (10 kg left)", "author")]
        # Bad input: one clear line each, nothing appended.
        head = a.event_log.head()
        for args, code in ((("post", "wanted", "x"), "bad_request"), (("post", "info", "x" * 5000), "payload_too_large"),
                           (("post", "info", "x", "--ttl", "5"), "bad_request"), (("update", pid), "bad_request"),
                           (("expire", pid), "conflict"), (("expire", "01M8PNZDSVP7H37Y3M802DCDJX"), "not_found")):
            p = await run(0, *args, check=False)
            assert p.returncode != 0 and p.stderr.startswith(f"error[{code}]") and len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)
        assert a.event_log.head() == head

    mesh.run(scenario)
