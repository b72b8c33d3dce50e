# The NixOS VM tests (flake checks): one per profile and the three-box village. They need a
# Nix machine with KVM (docs/nixos.md, "VM tests").
{ pkgs, module }:
let
  run = test: pkgs.testers.runNixOSTest (test // { defaults.imports = [ module ]; });
in
{
  anchor = run (import ./profile.nix { profile = "anchor"; });
  hearth = run (import ./profile.nix { profile = "hearth"; });
  spark = run (import ./profile.nix { profile = "spark"; });
  bridge = run (import ./profile.nix { profile = "bridge"; });
  village = run (import ./village.nix);
}
