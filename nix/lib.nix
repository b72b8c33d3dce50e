# Pure helpers of the flake and the module: no pkgs, only nixpkgs' `lib`, so they evaluate
# anywhere (the unit tests run them with nix-instantiate and compare with the Python side).
{ lib }:

rec {
  # Mirrors of hearthnet/constants.py (a unit test keeps them equal).
  constants = {
    transportPort = 7080; # TRANSPORT_DEFAULT_PORT
    uiPort = 7860; # UI_DEFAULT_PORT
    discoveryUdpPort = 42424; # DISCOVERY_UDP_PORT
    mdnsPort = 5353;
  };

  # PEP 503 name normalisation, which is also how nixpkgs names Python attributes.
  normalizeName = name: lib.toLower (lib.concatStringsSep "-" (lib.filter (s: s != "") (lib.splitString "-"
    (builtins.replaceStrings [ "_" "." ] [ "-" "-" ] name))));

  # "qrcode[png]>=7.4" -> { name = "qrcode"; extras = [ "png" ]; marker = null; }
  parseRequirement = req:
    let
      m = builtins.match "[[:space:]]*([A-Za-z0-9][A-Za-z0-9._-]*)[[:space:]]*(\\[([^]]*)])?[^;]*(;[[:space:]]*(.*))?" req;
      extras = if m == null || builtins.elemAt m 2 == null then [ ] else
        map lib.trim (lib.splitString "," (builtins.elemAt m 2));
    in
    if m == null then throw "hearthnet: cannot read the requirement ${builtins.toJSON req}"
    else { name = normalizeName (builtins.elemAt m 0); inherit extras; marker = builtins.elemAt m 4; };

  # pyproject.toml (builtins.fromTOML) -> { dependencies = [ req ]; extras = { llm = [ req ]; ... }; }
  requirements = pyproject: {
    dependencies = map parseRequirement pyproject.project.dependencies;
    extras = lib.mapAttrs (_: map parseRequirement) (pyproject.project.optional-dependencies or { });
  };

  # One model of the index (parsed JSON) -> how Nix provides its file:
  #   package     it travels inside a Python package (the `llm`/`embed` variants), nothing to fetch
  #   fetchurl    an https upstream, pinned by the index's sha256
  #   requireFile a mirror or anchor file: delivered by hand (USB) into the store, pinned the same way
  # (as `models bundle` decides: a model travels in its package only when every source is one)
  fetchSpec = m:
    let
      upstream = lib.findFirst (s: s.kind == "upstream") null m.sources;
      base = { inherit (m) id file sha256 size kind; };
    in
    if lib.all (s: s.kind == "package") m.sources then base // { fetcher = "package"; package = (builtins.head m.sources).package; }
    else if upstream != null then base // { fetcher = "fetchurl"; url = upstream.url; }
    else base // { fetcher = "requireFile"; };

  # The index's models by id, for the ids asked (an unknown id names the ids the index has).
  modelFetches = index: ids:
    let byId = lib.listToAttrs (map (m: lib.nameValuePair m.id m) index.models);
    in map
      (id: fetchSpec (byId.${id} or (throw
        "hearthnet: model ${id} is not in the model index (have: ${lib.concatStringsSep ", " (lib.attrNames byId)})")))
      ids;

  # Drop nulls (an option left unset is an absent key, as in a YAML site), recursively.
  dropNulls = v:
    if builtins.isAttrs v && !(lib.isDerivation v) then lib.mapAttrs (_: dropNulls) (lib.filterAttrs (_: x: x != null) v)
    else if builtins.isList v then map dropNulls v
    else v;

  # The `site` attrset -> the JSON text hearthnet's site loader reads (JSON is YAML).
  siteJSON = site: builtins.toJSON (dropNulls site);

  # What the firewall opens for a node (the same list as the Ansible role's hearthnet_service_allow):
  # the transport port, UDP discovery and mDNS, and the UI port only when the UI listens beyond loopback.
  firewallPorts = settings:
    let
      transport = settings.transport or { };
      ui = settings.ui or { };
      uiHost = ui.host or "127.0.0.1";
      loopback = uiHost == "localhost" || uiHost == "::1" || lib.hasPrefix "127." uiHost;
    in
    {
      tcp = [ (transport.port or constants.transportPort) ] ++ lib.optional (!loopback) (ui.port or constants.uiPort);
      udp = [ constants.discoveryUdpPort constants.mdnsPort ];
    };
}
