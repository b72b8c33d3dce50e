# Evaluate nix/module.nix with the stand-in for a list of configuration modules and return
# what the tests look at, as JSON (nix-instantiate --eval --strict --json).
{ lib, modules }:

let
  standIn = import ./stand_in.nix { inherit lib; };
  evaluated = lib.evalModules {
    modules = [ standIn.options ../../../nix/module.nix { _module.args.pkgs = standIn.pkgs; } ] ++ modules;
  };
  c = evaluated.config;
  # Derivations and functions do not go into JSON: their store path does.
  plain = v:
    if lib.isDerivation v then v.outPath
    else if builtins.isPath v then toString v # its place here, not a copy in the store
    else if builtins.isAttrs v then lib.mapAttrs (_: plain) v
    else if builtins.isList v then map plain v
    else if builtins.isFunction v then "<function>"
    else v;
in
{
  failed = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
  services = plain c.systemd.services;
  firewall = { tcp = c.networking.firewall.allowedTCPPorts; udp = c.networking.firewall.allowedUDPPorts; };
  users = plain c.users.users;
  groups = lib.attrNames c.users.groups;
  packages = plain c.environment.systemPackages;
  # Every option of services.hearthnet: its type, description and whether it has an example.
  options = map
    (o: { name = lib.showOption o.loc; type = o.type.description; description = o.description or ""; example = o ? example; internal = o.internal or false; })
    (lib.collect lib.isOption evaluated.options.services.hearthnet);
  inputs = if c.services.hearthnet.enable then plain c.services.hearthnet.renderInputs else null;
}
