# One profile on its own box: the service starts, /ready answers, SmolLM2 from the store
# answers the same text twice (temperature 0, fixed seed), the seeded handbook is found where
# the profile serves rag, and the state record says nixos. A non-anchor box joins a test anchor
# first (a node runs only inside a community).
{ profile }:
let
  c = import ./common.nix;
  anchored = profile != "anchor";
  hosts = { box = { }; } // (if anchored then { anchor = { profile = "anchor"; }; } else { });
in
{
  name = "hearthnet-${profile}";
  nodes = {
    box = c.node { name = "box"; inherit profile hosts; address = if anchored then "192.168.1.2" else c.anchorAddress; };
  } // (if anchored then { anchor = c.node { name = "anchor"; profile = "anchor"; inherit hosts; address = c.anchorAddress; }; } else { });

  testScript = c.prelude + (if anchored then ''
    start_all()
    anchor.wait_for_unit("hearthnet-ready.service")
    join(anchor, box)
  '' else ''
    box.wait_for_unit("hearthnet-ready.service")
  '') + ''
    box.succeed("runuser -u hearthnet -- hearthnet --data-dir /var/lib/hearthnet ready --json")
    first, second = answer(box), answer(box)
    assert first["text"] and first["text"] == second["text"], (first, second)
    state = json.loads(box.succeed("cat /var/lib/hearthnet/state.json"))
    assert state["applied_by"] == "nixos" and state["profile"] == "${profile}", state
    assert state["phases"]["service"] == {"unit": "hearthnet.service", "enabled": True, "active": True}, state
    assert state["phases"]["community"]["member"], state
  '' + (if profile == "anchor" || profile == "hearth" then ''
    hits = json.loads(hn(box, "rag query village_handbook 'where is the key to the well pump' --json"))
    assert any("bakery" in h["text"] for h in hits["hits"]), hits
  '' else "");
}
