"""ansible/ as a whole, without VMs: the playbook parses, ansible-lint's production profile
passes offline with 0 violations, and `--check --diff` against this machine as a fresh box
reports what it would do and changes nothing here (only the controller's own work copy
of the site is kept current, in a directory of its own)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hearthnet.provision.models import DEFAULT_INDEX

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
       "ANSIBLE_HOME": "/tmp/hearthnet-ansible-home"}


def run(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ANSIBLE, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_syntax():
    p = run(str(BIN / "ansible-playbook"), "--syntax-check", "site.yml")
    assert p.returncode == 0, p.stdout + p.stderr


def test_ansible_lint_production_profile_has_no_violations():
    p = run(str(BIN / "ansible-lint"), "--offline", "--profile", "production", "--nocolor")
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "0 failure(s), 0 warning(s)" in out and "Profile 'production' was required, and it passed" in out, out


@pytest.mark.slow
def test_check_mode_on_this_machine_changes_nothing(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the roles run as root on a box")
    site = tmp_path / "site.yaml"
    # The site's own model index (here the package's, as `models add --index` starts it) travels with the site copy.
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "index.json").write_bytes(DEFAULT_INDEX.read_bytes())
    site.write_text(yaml.safe_dump({"community": {"name": "Checkdorf"}, "bootstrap": ["https://10.77.0.11:7080"], "models": {"index": "models/index.json"},
                                    "hosts": {"here": {"profile": "anchor", "services": {"rag": False, "embedding": False}}}}))
    b = subprocess.run([str(BIN / "hearthnet"), "models", "bundle", "--site", str(site), "--hardware", str(ROOT / "tests/fixtures/hardware/pi4-4gb.json"),
                        "--wheel", str(ROOT), "--no-deps", "--out", str(tmp_path / "bundle"), "--json"], capture_output=True, text=True, timeout=900)
    assert b.returncode == 0, b.stderr
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"all": {
        "vars": {"hearthnet_site_file": str(site), "hearthnet_bundle_dir": str(tmp_path / "bundle"), "hearthnet_controller_dir": str(tmp_path / "work"),
                 "hearthnet_controller_exec": str(BIN / "hearthnet")},
        "children": {"anchors": {"hosts": {"here": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                                    "hearthnet_extras": [], "hearthnet_settings": {"ui": {"host": "0.0.0.0"}},
                                                    # as if the box had a node id: the controller renders it even in --check
                                                    "hearthnet_install_node_id": "ed25519:" + "A" * 43}}}}}}))
    # ... and its facts already on the controller (a fresh box in --check records none).
    (tmp_path / "work" / "facts").mkdir(parents=True)
    (tmp_path / "work" / "facts" / "here.json").write_bytes((ROOT / "tests/fixtures/hardware/pi4-4gb.json").read_bytes())
    watched = [Path("/etc/ansible/facts.d/hearthnet.fact"), Path("/opt/hearthnet"), Path("/var/lib/hearthnet"), Path("/etc/hearthnet"),
               Path("/etc/systemd/system/hearthnet.service")]
    before = {str(p): p.exists() for p in watched}
    passwd = Path("/etc/passwd").read_text()
    p = run(str(BIN / "ansible-playbook"), "-i", str(inv), "site.yml", "--check", "--diff", timeout=900)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    recap = {line.split()[0]: line for line in out.splitlines() if " : ok=" in line}
    assert "changed=0" not in recap["here"] and "failed=0" in recap["here"], recap  # a fresh box: it would do things
    assert {str(p): p.exists() for p in watched} == before and Path("/etc/passwd").read_text() == passwd  # and did none of them
    assert "TASK [hearthnet_install : Install HearthNet from the bundle's wheels only (uv, no index, bytecode compiled), then the install marker]" in out
    assert json.loads((tmp_path / "bundle" / "corpora.json").read_text())["version"] == 1
    assert (tmp_path / "work" / "models" / "index.json").read_bytes() == DEFAULT_INDEX.read_bytes()  # byte for byte beside the copy
    # hearthnet_settings reach the controller's own render of the host (the box renders with the same file).
    settings = tmp_path / "work" / "settings" / "here.json"
    assert json.loads(settings.read_text()) == {"ui": {"host": "0.0.0.0"}}
    rendered = tmp_path / "work" / "render" / "here"
    assert 'host = "0.0.0.0"' in (rendered / "hearthnet.toml").read_text().split("[ui]", 1)[1]
    assert json.loads((rendered / "receipt.json").read_text())["inputs"]["settings"] == hashlib.sha256(settings.read_bytes()).hexdigest()
    # A box whose extras the bundle has no wheels for stops in preflight, with one message, before anything is copied.
    p = run(str(BIN / "ansible-playbook"), "-i", str(inv), "site.yml", "--check", "--tags", "preflight", "-e", '{"hearthnet_extras": ["llm"]}', timeout=900)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "the bundle has no wheels for extras [llm] (its wheels.json has: [])" in out, out[-4000:]
    assert {str(p): p.exists() for p in watched} == before
