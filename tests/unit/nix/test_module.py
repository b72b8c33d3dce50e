"""services.hearthnet (nix/module.nix) under the real lib.evalModules, with a stand-in for the
NixOS options and pkgs it touches (tests/unit/nix/stand_in.nix)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from hearthnet.provision import hardware, render
from hearthnet.provision.effective import effective
from hearthnet.provision.profiles import NAMES

from nixeval import ROOT, NixError, site_index

FACTS = ROOT / "tests" / "fixtures" / "hardware" / "laptop-8gb-nogpu.json"
PROFILES = NAMES


def site_for(profile: str) -> dict:
    hosts = {"box": {"profile": profile}} | ({} if profile == "anchor" else {"mill": {"profile": "anchor"}})
    return {"community": {"name": "Testdorf"}, "bootstrap": ["https://192.168.1.1:7080"], "hosts": hosts}


def config(profile: str = "hearth", **hn) -> str:
    """One configuration module (Nix text): services.hearthnet for host `box` with these options (JSON values)."""
    opts = {"enable": True, "profile": profile, "site": site_for(profile), **hn}
    return ("{ networking.hostName = \"box\"; services.hearthnet = builtins.fromJSON "
            f"{json.dumps(json.dumps(opts))}; }}")


def unit_lines(text: str) -> dict[str, str]:
    """The [Service] directives of a rendered unit, without comments."""
    section, out = None, {}
    for line in text.splitlines():
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k] = v
    return out


def systemd_value(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return " ".join(map(str, v))
    return str(v)


@pytest.mark.parametrize("user", [None, "hearthnet"])
@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_evaluates_to_a_hardened_unit_like_the_rendered_one(nix, profile, user):
    got = nix.module(config(profile, user=user, hardwareFacts=str(FACTS)))
    assert got["failed"] == []
    svc = got["services"]["hearthnet"]
    exe = svc["serviceConfig"]["ExecStart"].split()[0]
    assert exe.startswith("/nix/store/") and exe.endswith("/bin/hearthnet")
    # The renderer's unit for the same install: the module keeps its hardening baseline, directive by directive.
    eff = effective(profile, hardware.load_facts(FACTS))
    rendered = unit_lines(render.render_files(eff, install=render.Install(exe, user, "/var/lib/hearthnet/rendered"))["hearthnet.service"].decode())
    ours = {k: systemd_value(v) for k, v in svc["serviceConfig"].items()}
    # Where they differ on purpose: NixOS manages /etc itself (the rendered files live in the data dir);
    # the module names its DynamicUser so the oneshots share its uid; NO_COLOR keeps the journal plain.
    expected_extra = {"Environment"} | ({"User", "Group"} if user is None else set())
    assert set(rendered) - set(ours) == {"ConfigurationDirectory"}
    assert set(ours) - set(rendered) == expected_extra
    assert {k: v for k, v in ours.items() if k in rendered} == {k: v for k, v in rendered.items() if k != "ConfigurationDirectory"}
    # Ordered oneshots before the node; what needs the running node after it.
    order = svc["after"]
    assert [u for u in order if u.startswith("hearthnet-")] == ["hearthnet-init.service", "hearthnet-render.service", "hearthnet-models.service"]
    assert got["services"]["hearthnet-render"]["after"] == ["hearthnet-init.service"]
    assert got["services"]["hearthnet-ready"]["after"] == ["hearthnet.service"]
    assert "--applied-by nixos" in got["services"]["hearthnet-ready"]["script"]
    assert ("hearthnet-detect" in got["services"]) is False
    assert (got["users"], got["groups"]) == (({"hearthnet": {"description": "HearthNet node", "group": "hearthnet", "home": "/var/lib/hearthnet",
                                                             "isSystemUser": True}}, ["hearthnet"]) if user else ({}, []))


def test_hardware_detected_at_activation_when_not_given(nix):
    got = nix.module(config("spark"))
    assert "detect-hardware --stable --out /var/lib/hearthnet/hardware.json" in got["services"]["hearthnet-detect"]["script"]
    assert got["services"]["hearthnet-render"]["after"] == ["hearthnet-init.service", "hearthnet-detect.service"]
    assert "--hardware /var/lib/hearthnet/hardware.json" in got["services"]["hearthnet-render"]["script"]


def test_render_arguments_work_with_the_real_renderer(nix, tmp_path):
    """What hearthnet-render.service runs, with the store files it names materialised here: the
    real CLI accepts it, the unit it renders starts the same ExecStart, the settings are merged."""
    got = nix.module(config("anchor", hardwareFacts=str(FACTS), community={"create": True},
                            settings={"transport": {"port": 7443}, "discovery": {"static_peers": ["https://192.168.1.9:7080"]}}))
    inputs = got["inputs"]
    site_json, settings_toml = tmp_path / "site.json", tmp_path / "settings.toml"
    site_json.write_text(json.dumps(inputs["site"]))
    settings_toml.write_text(tomli_w.dumps(inputs["settings"]))
    args = list(inputs["args"])
    args[args.index("--site") + 1] = str(site_json)
    args[args.index("--settings") + 1] = str(settings_toml)
    args[args.index("--out") + 1] = str(tmp_path / "rendered")
    p = subprocess.run([sys.executable, "-m", "hearthnet", "--data-dir", str(tmp_path / "d"), "render-profile", *args],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"dir": str(tmp_path / "rendered"), "changed": True}
    unit = unit_lines((tmp_path / "rendered" / "hearthnet.service").read_text())
    assert unit["ExecStart"] == got["services"]["hearthnet"]["serviceConfig"]["ExecStart"]
    toml = (tmp_path / "rendered" / "hearthnet.toml").read_text()
    assert "port = 7443" in toml and "https://192.168.1.9:7080" in toml
    assert json.loads((tmp_path / "rendered" / "bootstrap.json").read_text())["action"] == "create_community"


def test_firewall_is_closed_unless_opened(nix):
    assert nix.module(config("hearth"))["firewall"] == {"tcp": [], "udp": []}
    assert nix.module(config("hearth", openFirewall=True))["firewall"] == {"tcp": [7080], "udp": [42424, 5353]}
    wide = nix.module(config("hearth", openFirewall=True, settings={"ui": {"host": "0.0.0.0"}, "transport": {"port": 7443}}))
    assert wide["firewall"] == {"tcp": [7443, 7860], "udp": [42424, 5353]}


def test_an_unknown_profile_is_refused_by_the_option_type(nix):
    with pytest.raises(NixError) as e:
        nix.module(config("castle"))
    assert "services.hearthnet.profile" in str(e.value) and "is not of type" in str(e.value)


@pytest.mark.parametrize(("profile", "options", "words"), [
    ("hearth", {"community": {"create": True}}, "only the anchor creates the community"),
    ("anchor", {"community": {"create": True, "inviteFile": "/run/keys/i"}}, "not both"),
    ("anchor", {"community": {"inviteFile": "/run/keys/i"}}, "the anchor holds the community root key"),
    ("hearth", {"host": "kitchen"}, "kitchen is not one of the site's hosts"),
    ("spark", {"site": site_for("hearth")}, "services.hearthnet.profile is spark but the site says box is hearth"),
    ("hearth", {"site": None, "community": {"inviteFile": "/run/keys/i"}}, "need a site"),
    ("hearth", {"site": None, "corpora": {"handbook": {"sources": [{"path": "/srv/handbook"}]}}}, "need a site"),
    ("hearth", {"dataDir": "/srv/hearthnet"}, "a directory under /var/lib"),
    ("hearth", {"dataDir": "/var/lib/../etc"}, "a directory under /var/lib"),
])
def test_each_assertion_fires_when_it_should(nix, profile, options, words):
    failed = nix.module(config(profile, **options))["failed"]
    assert [f for f in failed if words in f] and len(failed) == (2 if words == "not both" else 1), failed  # create+inviteFile on the anchor is wrong twice


def test_a_valid_non_anchor_redeems_through_a_credential(nix):
    got = nix.module(config("spark", community={"inviteFile": "/run/keys/hearthnet-invite"}))
    assert got["failed"] == []
    unit = got["services"]["hearthnet-community"]
    assert unit["serviceConfig"]["LoadCredential"] == "invite:/run/keys/hearthnet-invite"
    assert '"$CREDENTIALS_DIRECTORY/invite" /var/lib/hearthnet/invites/box.txt' in unit["script"]
    assert "hearthnet-community.service" in got["services"]["hearthnet"]["requires"]


def test_models_become_pinned_store_paths(nix, tmp_path):
    """A site's own index: an upstream model is a fetchurl, a mirror-only one a requireFile, both
    pinned by the index's sha256, linked into the models dir the settings point the node at."""
    index = site_index(tmp_path)
    got = nix.module(config("hearth", modelIndex=str(index), models=["qwen-upstream", "handmade", "smollm2-135m-instruct-q4_1"]))
    assert got["failed"] == []
    inputs = got["inputs"]
    assert [(m["id"], m["fetcher"]) for m in inputs["models"]] == [("qwen-upstream", "fetchurl"), ("handmade", "requireFile"),
                                                                   ("smollm2-135m-instruct-q4_1", "package")]
    assert inputs["settings"]["models"]["dir"].endswith("-hearthnet-models")
    assert inputs["site"]["models"] == {"index": "models/index.json"}
    with pytest.raises(NixError, match="model nope is not in the model index"):
        nix.module(config("hearth", models=["nope"]))


def test_the_vm_tests_nodes_evaluate_and_their_scripts_are_python(nix):
    """nix/tests: every node of every test evaluates through the stand-in (with the module, as the
    flake's `defaults` adds it) with no failed assertion; each testScript compiles."""
    tests = {f"profile-{p}": f"import (root + \"/nix/tests/profile.nix\") {{ profile = \"{p}\"; }}" for p in PROFILES}
    tests["village"] = "import (root + \"/nix/tests/village.nix\")"
    for name, expr in tests.items():
        meta = nix.eval(f"let t = {expr}; in {{ nodes = builtins.attrNames t.nodes; script = t.testScript; }}")
        compile(meta["script"], f"{name}.testScript", "exec")
        for node in meta["nodes"]:
            got = nix.module(f"({expr}).nodes.{node}")
            assert got["failed"] == [], (name, node, got["failed"])
            assert got["services"]["hearthnet"]["serviceConfig"]["User"] == "hearthnet"
            assert "state record install render models community service corpora --applied-by nixos" in got["services"]["hearthnet-ready"]["script"]
            assert "--extra llm --extra embed" in got["services"]["hearthnet-ready"]["script"]  # the full package's extras
            assert node in meta["script"]


def test_the_flake_exposes_the_module_and_the_helpers(nix):
    """flake.nix's outputs with nixpkgs stood in by the real lib (packages and checks need all of nixpkgs)."""
    got = nix.eval("let f = import (root + \"/flake.nix\"); o = f.outputs { self = o; nixpkgs = { inherit lib; }; }; in "
                   "{ inputs = f.inputs.nixpkgs.url; modules = builtins.attrNames o.nixosModules; "
                   "imports = map toString o.nixosModules.default.imports; port = o.lib.constants.transportPort; "
                   "overlay = builtins.isFunction o.overlays.default; }")
    assert got == {"inputs": "github:NixOS/nixpkgs/nixos-unstable", "modules": ["default", "hearthnet"],
                   "imports": [str(ROOT / "nix" / "module.nix")], "port": 7080, "overlay": True}
    assert Path(ROOT / "nix" / "tests" / "handbook" / "well.md").read_text().count("bakery") == 1


def test_every_option_has_a_type_and_a_description(nix):
    options = nix.module(config("hearth"))["options"]
    names = {o["name"] for o in options}
    assert {"services.hearthnet.enable", "services.hearthnet.package", "services.hearthnet.profile", "services.hearthnet.site",
            "services.hearthnet.host", "services.hearthnet.settings", "services.hearthnet.hardwareFacts", "services.hearthnet.models",
            "services.hearthnet.corpora", "services.hearthnet.community.create", "services.hearthnet.community.inviteFile",
            "services.hearthnet.openFirewall", "services.hearthnet.environmentFile", "services.hearthnet.user",
            "services.hearthnet.group", "services.hearthnet.dataDir"} <= names
    for o in options:
        assert o["type"] and len(o["description"]) > 10, o
    undocumented = [o["name"] for o in options if not o["example"] and o["type"].startswith("null or") and not o["internal"]
                    and o["name"] not in {"services.hearthnet.settings.observability.log_level", "services.hearthnet.settings.ui.port"}]
    assert undocumented == [], "a nullable option shows an example of a value"
