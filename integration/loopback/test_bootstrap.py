"""`hearthnet bootstrap --plan`: a site rendered, then its phases run on real boxes (data dirs) until all have joined."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nodeprocs import cli, free_port

HW = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "hardware"


def site(path: Path, port: int, ids: dict[str, str | None]) -> None:
    def node(h: str) -> str:
        return f"\n    node_id: {ids[h]}" if ids.get(h) else ""

    path.write_text(f"""
community:
  name: Bootdorf
  policy: {{min_signatures_to_invite: 1, min_signatures_to_revoke: 2}}
bootstrap: ["https://127.0.0.1:{port}"]
hosts:
  mill:
    profile: anchor
    hardware: {HW / 'gpu-24gb.json'}
  kitchen:
    profile: hearth
    hardware: {HW / 'minipc-16gb.json'}{node('kitchen')}
  shop:
    profile: spark
    hardware: {HW / 'pi4-4gb.json'}{node('shop')}
""")


def boot(d: Path, plan: Path) -> dict:
    return json.loads(cli(d, "bootstrap", "--plan", str(plan), "--json", timeout=90).stdout)


def test_site_bootstrap_phases_are_idempotent(tmp_path, procs):
    port = free_port()
    dirs = {h: tmp_path / h for h in ("mill", "kitchen", "shop")}
    out, s = tmp_path / "rendered", tmp_path / "site.yaml"
    # Phase 0: every box has a node key; only the kitchen's id has been collected so far.
    for h in ("kitchen", "shop"):
        cli(dirs[h], "init")
    ids = {h: json.loads(cli(dirs[h], "id", "--json").stdout)["node_id"] for h in ("kitchen", "shop")}
    site(s, port, {"kitchen": ids["kitchen"]})
    cli(tmp_path, "render-profile", "--site", str(s), "--all", "--out", str(out))
    plan = json.loads((out / "mill" / "bootstrap.json").read_text())
    assert plan["action"] == "create_community" and plan["hosts"] == {"kitchen": ids["kitchen"], "shop": None}
    # The anchor creates the community (with the site's policy); invites wait for its node.
    r = boot(dirs["mill"], out / "mill" / "bootstrap.json")
    assert r["done"] == ["community Bootdorf created"] and not r["complete"] and r["changed"] == 1
    r = boot(dirs["mill"], out / "mill" / "bootstrap.json")
    assert "community Bootdorf exists" in r["done"] and any("node to run" in p for p in r["pending"]) and r["changed"] == 0
    idle = cli(dirs["mill"], "ready", check=False)
    assert idle.returncode == 3 and idle.stderr.startswith("error[no_node]")
    procs.start(dirs["mill"], port, [])
    assert json.loads(cli(dirs["mill"], "ready", "--wait", "60", "--json").stdout)["ready"] is True
    r = boot(dirs["mill"], out / "mill" / "bootstrap.json")
    assert "kitchen: invite issued" in r["done"] and any(p.startswith("shop: no node id") for p in r["pending"])
    invite = out / "mill" / "invites" / "kitchen.txt"
    first = invite.read_text()
    again = boot(dirs["mill"], out / "mill" / "bootstrap.json")
    assert again["done"][-1] == "kitchen: invite ready" and again["changed"] == 0 and invite.read_text() == first
    # The shop has no invite yet: pending, nothing changes on the box.
    r = boot(dirs["shop"], out / "shop" / "bootstrap.json")
    assert r["pending"] and not (dirs["shop"] / "communities").exists()
    # The kitchen redeems its own invite (delivered beside its plan), once.
    (out / "kitchen" / "invites").mkdir()
    shutil.copy(invite, out / "kitchen" / "invites" / "kitchen.txt")
    r = boot(dirs["kitchen"], out / "kitchen" / "bootstrap.json")
    assert r["done"] == ["joined Bootdorf as member"] and r["complete"] and r["changed"] == 1
    again = boot(dirs["kitchen"], out / "kitchen" / "bootstrap.json")
    assert again["done"] == ["member of Bootdorf"] and again["changed"] == 0
    # The shop's id is collected: re-render, the anchor issues its invite, the shop joins.
    site(s, port, ids)
    cli(tmp_path, "render-profile", "--site", str(s), "--all", "--out", str(out))
    r = boot(dirs["mill"], out / "mill" / "bootstrap.json")
    assert "kitchen: member" in r["done"] and "shop: invite issued" in r["done"] and r["complete"]
    r = json.loads(cli(dirs["shop"], "bootstrap", "--plan", str(out / "shop" / "bootstrap.json"), "--invites", str(out / "mill" / "invites"),
                       "--json").stdout)
    assert r["done"] == ["joined Bootdorf as member"]
    members = json.loads(cli(dirs["mill"], "member", "list", "--json").stdout)
    assert {m["node_id"] for m in members} >= set(ids.values())
    # Membership is the node's own state, in its data dir: a config (rendered on a provisioned box) is never rewritten.
    cid = json.loads((dirs["mill"] / "community.json").read_text())["community_id"]
    assert all(json.loads((dirs[h] / "community.json").read_text())["community_id"] == cid for h in ("kitchen", "shop"))
    assert not any("community_id" in (dirs[h] / "hearthnet.toml").read_text() for h in ("mill", "kitchen", "shop"))
    # The policy came from the site.
    pol = json.loads(cli(dirs["mill"], "log", "--json").stdout)[0]["data"]["policy"]
    assert pol["min_signatures_to_revoke"] == 2
