# hearthnet from this checkout's pyproject.toml: the dependencies are read from it (one list,
# not a second one kept by hand), mapped to nixpkgs' Python attributes by their PEP 503 names.
{ lib
, python3Packages
, extras ? [ ] # [ "llm" ] and/or [ "embed" ]: the variants with the embedded models
}:

let
  hnlib = import ./lib.nix { inherit lib; };
  pyproject = builtins.fromTOML (builtins.readFile ../pyproject.toml);
  reqs = hnlib.requirements pyproject;
  # pysqlite3-binary only stands in for an interpreter that cannot load SQLite extensions
  # (pyenv builds); nixpkgs' sqlite3 loads sqlite-vec itself.
  skipped = [ "pysqlite3-binary" ];
  # llama-cpp-python's [server] extra is for its own OpenAI server, which hearthnet does not start.
  attr = r: python3Packages.${r.name} or (throw "hearthnet: no python3Packages.${r.name} for the requirement ${r.name}");
  withExtras = r: [ (attr r) ] ++ lib.concatMap (e: lib.optionals (e == "png") [ python3Packages.pillow ]) r.extras;
  fromReqs = rs: lib.concatMap withExtras (lib.filter (r: !(lib.elem r.name skipped)) rs);
  unknownExtras = lib.subtractLists (lib.attrNames reqs.extras) extras;
in
assert lib.assertMsg (unknownExtras == [ ]) "hearthnet: unknown extras ${toString unknownExtras} (have: ${toString (lib.attrNames reqs.extras)})";
python3Packages.buildPythonApplication {
  pname = "hearthnet" + lib.concatMapStrings (e: "-${e}") extras;
  inherit (pyproject.project) version;
  pyproject = true;

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [ ../pyproject.toml ../README.md ../hearthnet ../profiles ../docs ];
  };

  build-system = [ python3Packages.setuptools python3Packages.wheel ];
  dependencies = fromReqs reqs.dependencies ++ lib.concatMap (e: fromReqs reqs.extras.${e}) extras;
  pythonRemoveDeps = skipped;

  # The unit tests need loopback servers, netns and the models: they run in the checks and in CI.
  doCheck = false;
  pythonImportsCheck = [ "hearthnet" ];
  passthru = { inherit extras; }; # the module records them (state.json, install phase)

  meta = {
    description = pyproject.project.description;
    license = lib.licenses.asl20;
    mainProgram = "hearthnet";
    platforms = lib.platforms.linux;
  };
}
