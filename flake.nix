{
  description = "HearthNet: a local-first AI mesh for a village (package, NixOS module, VM tests)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: lib.genAttrs systems (system: f (import nixpkgs { inherit system; overlays = [ self.overlays.default ]; }));
    in
    {
      overlays.default = import ./nix/overlay.nix;

      packages = forAll (pkgs: {
        inherit (pkgs) hearthnet hearthnet-llm hearthnet-embed hearthnet-full;
        default = pkgs.hearthnet;
      });

      # The module with the overlay, so `pkgs.hearthnet` (the package option's default) exists.
      nixosModules.hearthnet = { imports = [ ./nix/module.nix ]; nixpkgs.overlays = [ self.overlays.default ]; };
      nixosModules.default = self.nixosModules.hearthnet;

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ pkgs.hearthnet-full ];
          packages = [ pkgs.ansible pkgs.ansible-lint pkgs.qemu pkgs.nixpkgs-fmt ];
        };
      });

      # NixOS VM tests (they need KVM): nix flake check, or nix build .#checks.x86_64-linux.village
      checks = lib.genAttrs [ "x86_64-linux" ] (system: import ./nix/tests {
        pkgs = import nixpkgs { inherit system; overlays = [ self.overlays.default ]; };
        module = self.nixosModules.hearthnet;
      });

      lib = import ./nix/lib.nix { inherit lib; };
    };
}
