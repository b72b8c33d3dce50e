# services.hearthnet: a NixOS box becomes a HearthNet node from its configuration alone.
#
# Nothing here renders a config: ordered oneshot units call the same `hearthnet render-profile`
# the CLI and the Ansible roles call (the profile decides; `settings` is merged over it through
# `--settings`), then verify the pinned models, join the community, run the node, seed the
# corpora and leave the expected-state record (`--applied-by nixos`, docs/provisioning.md).
# Nothing is downloaded at run time: model files are fixed-output store paths.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf types literalExpression optional optionals optionalString;
  cfg = config.services.hearthnet;
  hnlib = import ./lib.nix { inherit lib; };
  tomlFormat = pkgs.formats.toml { };

  exe = "${cfg.package}/bin/hearthnet";
  renderDir = "${cfg.dataDir}/rendered";
  invitesDir = "${cfg.dataDir}/invites";
  configFile = "${renderDir}/hearthnet.toml";
  hardwareFile = if cfg.hardwareFacts != null then cfg.hardwareFacts else "${cfg.dataDir}/hardware.json";
  hn = "${exe} --data-dir ${cfg.dataDir} --config ${configFile}";

  # The model index the box resolves ids through: the site's own, or the package's.
  indexFile = if cfg.modelIndex != null then cfg.modelIndex else ../profiles/models/index.json;
  fetches = hnlib.modelFetches (builtins.fromJSON (builtins.readFile indexFile)) cfg.models;
  modelFile = f:
    if f.fetcher == "fetchurl" then pkgs.fetchurl { inherit (f) url sha256; name = f.file; }
    else pkgs.requireFile {
      name = f.file;
      inherit (f) sha256;
      message = ''
        The model ${f.id} (${f.file}, ${toString f.size} bytes) is delivered by hand, not downloaded.
        Copy it from the village's USB stick or mirror and add it to the store:
          nix-store --add-fixed sha256 ${f.file}
        (its sha256 must be ${f.sha256}), then rebuild.
      '';
    };
  storeModels = lib.filter (f: f.fetcher != "package") fetches;
  modelsDir = pkgs.linkFarm "hearthnet-models" (map (f: { name = f.file; path = modelFile f; }) storeModels);

  # The site as the loader reads it: JSON in a directory of its own, with the model index beside it.
  siteDoc = if cfg.site == null then null else lib.recursiveUpdate (hnlib.dropNulls cfg.site) ({
    hosts.${cfg.host}.profile = cfg.profile;
    corpora = lib.mapAttrs (_: c: hnlib.dropNulls c) cfg.corpora;
  } // lib.optionalAttrs (cfg.modelIndex != null) { models.index = "models/index.json"; });
  siteDir = pkgs.linkFarm "hearthnet-site" ([{ name = "site.json"; path = pkgs.writeText "site.json" (hnlib.siteJSON siteDoc); }]
    ++ optional (cfg.modelIndex != null) { name = "models/index.json"; path = cfg.modelIndex; });

  settingsDoc = lib.recursiveUpdate (lib.optionalAttrs (storeModels != [ ]) { models.dir = "${modelsDir}"; }) (hnlib.dropNulls cfg.settings);
  settingsFile = tomlFormat.generate "hearthnet-settings.toml" settingsDoc;

  renderArgs = (if cfg.site != null then [ "--site" "${siteDir}/site.json" "--host" cfg.host ] else [ "--profile" cfg.profile ])
    ++ [ "--hardware" "${hardwareFile}" "--exec" exe "--config-dir" renderDir "--out" renderDir "--settings" "${settingsFile}" "--json" ]
    ++ optionals (cfg.user != null) [ "--user" cfg.user ];

  ports = hnlib.firewallPorts settingsDoc;
  anchor = cfg.profile == "anchor";
  bootstraps = (anchor && cfg.community.create) || cfg.community.inviteFile != null;

  # Who runs everything: a static user, or systemd's DynamicUser (the same name in every unit,
  # so the oneshots and the node share one uid and one StateDirectory).
  runAs = if cfg.user != null then { User = cfg.user; Group = cfg.group; } else { DynamicUser = true; User = "hearthnet"; Group = "hearthnet"; };
  stateDirectory = lib.removePrefix "/var/lib/" cfg.dataDir;
  common = runAs // {
    StateDirectory = stateDirectory;
    StateDirectoryMode = "0700";
    Environment = [ "HEARTHNET_HOME=${cfg.dataDir}" "NO_COLOR=1" ];
  } // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = cfg.environmentFile; };
  oneshot = { description, after ? [ ], script, extra ? { } }: {
    inherit description script;
    after = after;
    requires = after;
    requiredBy = [ "hearthnet.service" ];
    before = [ "hearthnet.service" ];
    path = [ cfg.package ];
    serviceConfig = common // { Type = "oneshot"; RemainAfterExit = true; } // extra;
  };
  readyTasks = [ "hearthnet-init.service" "hearthnet-render.service" "hearthnet-models.service" ]
    ++ optional (cfg.hardwareFacts == null) "hearthnet-detect.service"
    ++ optional bootstraps "hearthnet-community.service";
in
{
  options.services.hearthnet = {
    enable = mkEnableOption "a HearthNet mesh node";

    package = mkOption {
      type = types.package;
      default = pkgs.hearthnet;
      defaultText = literalExpression "pkgs.hearthnet";
      example = literalExpression "pkgs.hearthnet-llm";
      description = ''
        The hearthnet package. `hearthnet-llm` carries the embedded SmolLM2 model and llama.cpp,
        `hearthnet-embed` the MiniLM embedder, `hearthnet-full` both (overlays.default).
      '';
    };

    profile = mkOption {
      type = types.enum [ "anchor" "hearth" "spark" "bridge" ];
      example = "hearth";
      description = "The box's role (profiles/*.yaml): what it serves, and its limits, for its hardware tier.";
    };

    host = mkOption {
      type = types.strMatching "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      description = "This box's name among the site's `hosts`.";
    };

    site = mkOption {
      type = types.nullOr (types.submodule { freeformType = (pkgs.formats.json { }).type; });
      default = null;
      example = literalExpression ''
        {
          community.name = "Villagedorf";
          bootstrap = [ "https://10.0.0.2:7080" ];
          hosts.mill = { profile = "anchor"; };
          hosts.bakery = { profile = "hearth"; node_id = "ed25519:…"; };
        }
      '';
      description = ''
        The site manifest (profiles/schemas/site.schema.json) as a Nix attrset, written to the store
        as JSON for hearthnet's site loader. `hosts.<host>.profile` is set from `profile`. Paths to
        corpus sources may be Nix paths (they are copied to the store). Null: the profile alone.
      '';
    };

    settings = mkOption {
      type = types.submodule {
        freeformType = tomlFormat.type;
        options = {
          transport.port = mkOption {
            type = types.nullOr types.port;
            default = null;
            example = 7443;
            description = "The node's transport port (default ${toString hnlib.constants.transportPort}). `openFirewall` opens it.";
          };
          ui.host = mkOption {
            type = types.nullOr types.str;
            default = null;
            example = "0.0.0.0";
            description = "Where the UI and the /v1 gateway listen (rendered: loopback). Plain HTTP: see docs/configuration.md.";
          };
          ui.port = mkOption {
            type = types.nullOr types.port;
            default = null;
            description = "The UI port (default ${toString hnlib.constants.uiPort}); opened only when `ui.host` is not loopback.";
          };
          observability.log_level = mkOption {
            type = types.nullOr (types.enum [ "debug" "info" "warning" "error" ]);
            default = null;
            description = "Lowest level logged.";
          };
        };
      };
      default = { };
      example = literalExpression ''{ transport.port = 7443; discovery.static_peers = [ "https://10.0.0.2:7080" ]; }'';
      description = ''
        hearthnet.toml keys (docs/configuration.md) merged over what the profile renders, through
        `render-profile --settings` (hashed into the render receipt). Unset keys are left to the profile.
      '';
    };

    hardwareFacts = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = literalExpression "./mill-hardware.json";
      description = ''
        Recorded facts (`hearthnet detect-hardware --stable --json`) the profile's tier is chosen from.
        Null: detected on the box at activation (hearthnet-detect.service).
      '';
    };

    modelIndex = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = literalExpression "./models/index.json";
      description = "The site's own model index (`hearthnet models add --index`); null: the package's.";
    };

    models = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "qwen2.5-7b-instruct-q4_k_m" ];
      description = ''
        Model ids of the index whose files this box holds. Each becomes a hash-pinned store path:
        `fetchurl` from its https upstream, or `requireFile` for files delivered on USB (a mirror or
        anchor source). Models shipped in a Python package come with `package` and need no entry.
      '';
    };

    corpora = mkOption {
      type = types.attrsOf (types.submodule {
        options = {
          description = mkOption { type = types.str; default = ""; description = "What the corpus holds."; };
          language = mkOption { type = types.str; default = "und"; example = "de"; description = "BCP 47 language tag."; };
          sources = mkOption {
            type = types.listOf (types.submodule {
              freeformType = (pkgs.formats.json { }).type;
              options.path = mkOption { type = types.either types.path types.str; description = "A directory or file (a Nix path is copied to the store)."; };
            });
            default = [ ];
            description = "Where its documents come from (extensions, max_bytes as in the site manifest).";
          };
        };
      });
      default = { };
      example = literalExpression ''{ village_handbook = { language = "en"; sources = [ { path = ./handbook; } ]; }; }'';
      description = "Corpus presets added to the site's `corpora`; the box seeds those its profile names.";
    };

    community = {
      create = mkOption {
        type = types.bool;
        default = false;
        description = "On the anchor: create the community (the site's `community`) and issue invites to the hosts whose node ids the site knows.";
      };
      inviteFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/keys/hearthnet-invite";
        description = ''
          On any other box: a file holding this box's invite (from the anchor's `invites/<host>.txt`),
          redeemed once. A path on the box, not in the store (an invite is a secret); read through
          systemd's LoadCredential, so it may stay root-only.
        '';
      };
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open what the Ansible path opens: the transport port (TCP), UDP ${toString hnlib.constants.discoveryUdpPort} (discovery),
        UDP ${toString hnlib.constants.mdnsPort} (mDNS), and the UI port only when the UI listens beyond loopback.
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/hearthnet.env";
      description = "Environment for every hearthnet unit, kept out of the store: API keys of internet LLM backends (`api_key_env`).";
    };

    user = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "hearthnet";
      description = "A static system user (created when it does not exist). Null: systemd's DynamicUser.";
    };

    group = mkOption {
      type = types.str;
      default = if cfg.user != null then cfg.user else "hearthnet";
      defaultText = literalExpression ''if user != null then user else "hearthnet"'';
      description = "The static user's group.";
    };

    dataDir = mkOption {
      type = types.str;
      default = "/var/lib/hearthnet";
      description = "The node's data directory (keys, event log, blobs, rendered files, state.json): a StateDirectory under /var/lib.";
    };

    renderInputs = mkOption {
      type = types.attrsOf types.anything;
      internal = true;
      readOnly = true;
      description = "What the units hand to `render-profile` (the site and settings documents, the model files, its arguments) and the ports opened: for tests and `nixos-option`.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.community.create -> anchor;
        message = "services.hearthnet.community.create: only the anchor creates the community (this box's profile is ${cfg.profile}).";
      }
      {
        assertion = !(cfg.community.create && cfg.community.inviteFile != null);
        message = "services.hearthnet.community: give create (the anchor) or inviteFile (any other box), not both.";
      }
      {
        assertion = cfg.community.inviteFile != null -> !anchor;
        message = "services.hearthnet.community.inviteFile: the anchor holds the community root key and redeems no invite; use community.create.";
      }
      {
        assertion = cfg.site != null -> (cfg.site.hosts or { }) ? ${cfg.host};
        message = "services.hearthnet.host: ${cfg.host} is not one of the site's hosts (${lib.concatStringsSep ", " (lib.attrNames (cfg.site.hosts or { }))}).";
      }
      {
        assertion = cfg.site != null -> ((cfg.site.hosts.${cfg.host} or { }).profile or cfg.profile) == cfg.profile;
        message = "services.hearthnet.profile is ${cfg.profile} but the site says ${cfg.host} is ${(cfg.site.hosts.${cfg.host} or { }).profile or "?"}.";
      }
      {
        assertion = cfg.site == null -> !(cfg.community.create || cfg.community.inviteFile != null || cfg.corpora != { } || cfg.modelIndex != null);
        message = "services.hearthnet: community, corpora and modelIndex need a site (they are parts of the site manifest).";
      }
      {
        assertion = lib.hasPrefix "/var/lib/" cfg.dataDir && !(lib.hasInfix ".." cfg.dataDir);
        message = "services.hearthnet.dataDir ${cfg.dataDir}: a directory under /var/lib (systemd's StateDirectory keeps it owned by the node's user).";
      }
    ];

    users.users = mkIf (cfg.user != null) {
      ${cfg.user} = { isSystemUser = true; group = cfg.group; home = cfg.dataDir; description = "HearthNet node"; };
    };
    users.groups = mkIf (cfg.user != null) { ${cfg.group} = { }; };

    networking.firewall = mkIf cfg.openFirewall {
      allowedTCPPorts = ports.tcp;
      allowedUDPPorts = ports.udp;
    };

    environment.systemPackages = [ cfg.package ];

    services.hearthnet.renderInputs = { site = siteDoc; settings = settingsDoc; models = fetches; args = renderArgs; firewall = ports; };

    systemd.services = {
      hearthnet-init = oneshot {
        description = "HearthNet: this node's identity";
        script = ''
          [ -e ${cfg.dataDir}/keys/node.key ] || ${exe} --data-dir ${cfg.dataDir} init --name ${cfg.host} --json
        '';
      };

      hearthnet-detect = mkIf (cfg.hardwareFacts == null) (oneshot {
        description = "HearthNet: detect this box's hardware";
        after = [ "hearthnet-init.service" ];
        script = "${exe} --data-dir ${cfg.dataDir} detect-hardware --stable --out ${cfg.dataDir}/hardware.json --json";
      });

      hearthnet-render = oneshot {
        description = "HearthNet: render this box's files from its profile and site";
        after = [ "hearthnet-init.service" ] ++ optional (cfg.hardwareFacts == null) "hearthnet-detect.service";
        script = "${exe} --data-dir ${cfg.dataDir} render-profile ${lib.escapeShellArgs renderArgs}";
      };

      hearthnet-models = oneshot {
        description = "HearthNet: verify the pinned model files";
        after = [ "hearthnet-render.service" ];
        script = "${hn} models verify --json";
      };

      hearthnet-community = mkIf bootstraps (oneshot {
        description = "HearthNet: create the community (anchor) or redeem this box's invite";
        after = [ "hearthnet-render.service" ];
        script = optionalString (cfg.community.inviteFile != null) ''
          install -D -m 0600 "$CREDENTIALS_DIRECTORY/invite" ${invitesDir}/${cfg.host}.txt
        '' + "${hn} bootstrap --plan ${renderDir}/bootstrap.json --invites ${invitesDir} --json";
        extra = lib.optionalAttrs (cfg.community.inviteFile != null) { LoadCredential = "invite:${cfg.community.inviteFile}"; };
      });

      hearthnet = {
        description = "HearthNet node (${cfg.profile})";
        documentation = [ "https://hearthnet.invalid/docs/nixos.md" ];
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ] ++ readyTasks;
        requires = readyTasks;
        # The rendered unit's hardening baseline (hearthnet.service.j2), kept equal by a unit test.
        serviceConfig = runAs // {
          Type = "exec";
          ExecStart = "${hn} run";
          StateDirectory = stateDirectory;
          StateDirectoryMode = "0700";
          Environment = [ "NO_COLOR=1" ];
          ProtectSystem = "strict";
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          NoNewPrivileges = true;
          ProtectKernelTunables = true;
          ProtectKernelModules = true;
          ProtectControlGroups = true;
          RestrictNamespaces = true;
          RestrictSUIDSGID = true;
          LockPersonality = true;
          SystemCallArchitectures = "native";
          CapabilityBoundingSet = "";
          # Relaxed: mDNS and UDP discovery need multicast sockets (AF_NETLINK for interface lists).
          RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" "AF_NETLINK" ];
          Restart = "on-failure";
          RestartSec = 5;
          TimeoutStopSec = 30;
        } // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = cfg.environmentFile; };
      };

      # What needs the running node: the anchor's invites, corpus seeding, then the state record.
      hearthnet-ready = {
        description = "HearthNet: invites, corpora and the state record, once the node is ready";
        wantedBy = [ "multi-user.target" ];
        after = [ "hearthnet.service" ];
        bindsTo = [ "hearthnet.service" ];
        path = [ cfg.package config.systemd.package ];
        serviceConfig = common // { Type = "oneshot"; RemainAfterExit = true; };
        script = ''
          ${hn} ready --wait 300 --json
        '' + optionalString (anchor && cfg.community.create) ''
          ${hn} bootstrap --plan ${renderDir}/bootstrap.json --invites ${invitesDir} --json
        '' + ''
          ${hn} rag seed --plan ${renderDir}/corpora.json${optionalString (cfg.site != null) " --root ${siteDir}"} --json
          ${hn} state record install render models community service corpora --applied-by nixos --exec ${exe}${lib.concatMapStrings (e: " --extra ${e}") (cfg.package.extras or [ ])} --json
        '';
      };
    };
  };
}
