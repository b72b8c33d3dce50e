# A small stand-in for what nix/module.nix uses from NixOS and nixpkgs, so the module evaluates
# under the real lib.evalModules (../shared/nixpkgs-lib) on a machine that cannot download
# nixpkgs. Derivations are attrsets with a fixed outPath that keep their arguments for the tests.
{ lib }:

let
  inherit (lib) mkOption types;
  drv = name: attrs: attrs // {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/${builtins.substring 0 32 (builtins.hashString "sha256" name)}-${name}";
  };
  # nixpkgs' pkgs.formats.{json,toml}: the same value types, generate keeps the value.
  jsonValue = types.nullOr (types.oneOf [ types.bool types.int types.float types.str types.path (types.attrsOf jsonValue) (types.listOf jsonValue) ]) // {
    description = "JSON value";
  };
  tomlValue = types.oneOf [ types.bool types.int types.float types.str types.path (types.attrsOf tomlValue) (types.listOf tomlValue) ] // {
    description = "TOML value";
  };
  format = valueType: { type = types.attrsOf valueType; generate = name: value: drv name { inherit value; }; };
in
{
  pkgs = {
    hearthnet = drv "hearthnet-0.1.0" { meta.mainProgram = "hearthnet"; };
    hearthnet-llm = drv "hearthnet-llm-0.1.0" { meta.mainProgram = "hearthnet"; };
    hearthnet-embed = drv "hearthnet-embed-0.1.0" { meta.mainProgram = "hearthnet"; };
    hearthnet-full = drv "hearthnet-full-0.1.0" { meta.mainProgram = "hearthnet"; extras = [ "llm" "embed" ]; };
    systemd = drv "systemd" { };
    writeText = name: text: drv name { inherit text; };
    linkFarm = name: entries: drv name { inherit entries; };
    fetchurl = args: drv args.name { fetcher = "fetchurl"; inherit args; };
    requireFile = args: drv args.name { fetcher = "requireFile"; inherit args; };
    formats = { json = { }: format jsonValue; toml = { }: format tomlValue; };
  };

  # The NixOS options the module sets or reads, and those the nixosTest nodes set.
  options = { pkgs, ... }: {
    options = {
      assertions = mkOption { type = types.listOf types.unspecified; default = [ ]; };
      warnings = mkOption { type = types.listOf types.str; default = [ ]; };
      networking.hostName = mkOption { type = types.str; default = "nixos"; };
      networking.firewall.enable = mkOption { type = types.bool; default = true; };
      networking.firewall.allowedTCPPorts = mkOption { type = types.listOf types.port; default = [ ]; };
      networking.firewall.allowedUDPPorts = mkOption { type = types.listOf types.port; default = [ ]; };
      networking.interfaces = mkOption { type = types.attrsOf types.anything; default = { }; };
      networking.useDHCP = mkOption { type = types.bool; default = true; };
      networking.defaultGateway = mkOption { type = types.nullOr types.str; default = null; };
      users.users = mkOption { type = types.attrsOf (types.attrsOf types.anything); default = { }; };
      users.groups = mkOption { type = types.attrsOf (types.attrsOf types.anything); default = { }; };
      environment.systemPackages = mkOption { type = types.listOf types.package; default = [ ]; };
      systemd.package = mkOption { type = types.package; default = pkgs.systemd; };
      systemd.services = mkOption {
        type = types.attrsOf (types.submodule {
          freeformType = types.attrsOf types.anything;
          options.serviceConfig = mkOption { type = types.attrsOf types.anything; default = { }; };
        });
        default = { };
      };
      virtualisation = mkOption { type = types.attrsOf types.anything; default = { }; };
    };
  };
}
