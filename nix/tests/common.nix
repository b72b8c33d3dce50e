# What the NixOS VM tests share: the village's site, one node's configuration, and the
# test driver's helpers. Each VM is on VLAN 1 (10.0.0.0/24 here) with no route out.
rec {
  # SmolLM2 on every profile comes from this box's tier (tests/fixtures/hardware/).
  hardware = ../../tests/fixtures/hardware/laptop-8gb-nogpu.json;
  anchorAddress = "192.168.1.1";

  site = hosts: {
    community.name = "Testdorf";
    bootstrap = [ "https://${anchorAddress}:7080" ];
    inherit hosts;
  };

  # One VM: the module from the flake (`defaults` of the test), the full package (SmolLM2 and
  # MiniLM from the store), the handbook corpus, a static user for the test's admin commands.
  node = { name, profile, hosts, address, extra ? { } }: { pkgs, lib, ... }: {
    virtualisation.memorySize = 3072;
    virtualisation.vlans = [ 1 ];
    networking.hostName = name;
    networking.defaultGateway = null; # no route out: everything must work offline
    networking.interfaces.eth1.ipv4.addresses = [{ inherit address; prefixLength = 24; }];
    services.hearthnet = lib.recursiveUpdate {
      enable = true;
      inherit profile;
      package = pkgs.hearthnet-full;
      user = "hearthnet";
      hardwareFacts = hardware;
      site = site hosts;
      corpora.village_handbook = { language = "en"; sources = [{ path = ./handbook; }]; };
      openFirewall = true;
      community.create = profile == "anchor";
      community.inviteFile = if profile == "anchor" then null else "/run/keys/hearthnet-invite";
    } extra;
  };

  # The driver's Python: admin commands as the node's user, and carrying an invite.
  prelude = ''
    import json

    HN = "runuser -u hearthnet -- hearthnet --data-dir /var/lib/hearthnet --config /var/lib/hearthnet/rendered/hearthnet.toml"


    def hn(machine, args):
        return machine.succeed(f"{HN} {args}")


    def join(anchor, box):
        """The box's node id to the anchor, the anchor's invite back (as an admin carries it)."""
        box.wait_for_unit("hearthnet-render.service")
        node_id = json.loads(hn(box, "id --json"))["node_id"]
        invite = hn(anchor, f"invite create {node_id} --json")
        text = json.loads(invite)["invite"]
        box.succeed(f"install -d -m 0700 /run/keys && printf '%s\\n' '{text}' > /run/keys/hearthnet-invite && chmod 0600 /run/keys/hearthnet-invite")
        box.succeed("systemctl start hearthnet-ready.service")
        box.wait_for_unit("hearthnet-ready.service")


    CHAT = json.dumps({"messages": [{"role": "user", "content": "Name one fruit."}], "max_tokens": 8, "temperature": 0, "seed": 7})


    def answer(machine):
        return json.loads(hn(machine, f"call llm.chat@1.0 --timeout 120 --body '{CHAT}'"))
  '';
}
