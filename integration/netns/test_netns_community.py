"""Community services between nodes in their own network namespaces: invites instead of
`member add`, a 20 MiB file fetched from two sources, chat to a node that was off, market
posts made on both sides of a partition."""

from __future__ import annotations

import json
import os

from harness import NetnsLab  # type: ignore[import-not-found]
from test_netns import FAST, all_see_each_other, wait  # type: ignore[import-not-found]


def invite_and_start(lab: NetnsLab) -> None:
    a = lab.nodes[0]
    lab.exec(a, "init", "--create-community", "Netnsdorf", "--name", "node-0")
    lab.start(a, FAST)
    for n in lab.nodes[1:]:
        lab.exec(n, "init", "--name", f"node-{n.index}")
        nid = json.loads(lab.exec(n, "id", "--json").stdout)["node_id"]
        text = lab.exec(a, "invite", "create", nid).stdout.strip()
        assert text.startswith("hearthnet://v1/")
        out = json.loads(lab.exec(n, "invite", "redeem", text, "--json").stdout)
        assert out["url"] == a.url and out["level"] == "member"
        (n.data_dir / "peers.json").unlink()  # discovery finds the rest
        lab.start(n, FAST)


def test_invites_files_and_chat_across_namespaces(lab_factory, tmp_path):
    lab = lab_factory(3)
    invite_and_start(lab)
    wait(lambda: all_see_each_other(lab), 60, "discovery")
    a, b, c = lab.nodes
    ids = [json.loads(lab.exec(n, "id", "--json").stdout)["node_id"] for n in lab.nodes]

    # A 20 MiB file put on a, fetched by b (one source), then by c from a and b.
    data = os.urandom(20 << 20)
    src = tmp_path / "seeds.tar"
    src.write_bytes(data)
    cid = json.loads(lab.exec(a, "file", "put", str(src), "--json").stdout)["cid"]
    got_b = json.loads(lab.exec(b, "file", "get", cid, "--out", str(tmp_path / "b.tar"), "--pin", "--json", timeout=180).stdout)
    assert (tmp_path / "b.tar").read_bytes() == data and set(got_b["report"]["by_source"]) == {ids[0]}
    lab.exec(b, "call", "file.advertise@1.0", "--body", json.dumps({"cid": cid}))

    def c_sees_two_sources():
        rows = json.loads(lab.exec(c, "file", "list", "--json").stdout)
        return any(r["cid"] == cid and len(r["sources"]) == 2 for r in rows)

    wait(c_sees_two_sources, 60, "c hearing both adverts")
    got_c = json.loads(lab.exec(c, "file", "get", cid, "--out", str(tmp_path / "c.tar"), "--json", timeout=180).stdout)
    assert (tmp_path / "c.tar").read_bytes() == data
    assert set(got_c["report"]["by_source"]) == {ids[0], ids[1]}, got_c["report"]

    # Chat to a node that is off: delivered after it restarts.
    lab.kill(c)
    sent = json.loads(lab.exec(b, "chat", "send", ids[2], "The ferry leaves at six", "--json").stdout)
    assert sent["delivery"] in ("forwarded", "queued")
    lab.start(c, FAST)

    def delivered():
        msgs = json.loads(lab.exec(b, "chat", "history", ids[2], "--json").stdout)["messages"]
        return msgs and msgs[-1]["delivered_at"] is not None

    wait(delivered, 60, "delivery receipt from c")
    msgs = json.loads(lab.exec(c, "chat", "history", "--json").stdout)["messages"]
    assert [m["body"] for m in msgs] == ["The ferry leaves at six"]
    # a relayed it but cannot read it.
    assert json.loads(lab.exec(a, "chat", "history", "--json").stdout)["messages"] == []

    # Market posts made on both sides of a partition reach every node after healing.
    lab.partition([2])
    post_a = json.loads(lab.exec(a, "market", "post", "offer", "Spare seed potatoes", "--json").stdout)["post_id"]
    post_c = json.loads(lab.exec(c, "market", "post", "request", "A ladder for the weekend", "--json").stdout)["post_id"]

    def listed(n) -> set[str]:
        return {p["post_id"] for p in json.loads(lab.exec(n, "market", "list", "--json").stdout)}

    assert post_a not in listed(c) and post_c not in listed(a)
    lab.heal()
    wait(lambda: all(listed(n) == {post_a, post_c} for n in lab.nodes), 90, "posts from both sides everywhere")
