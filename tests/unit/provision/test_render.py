"""render-profile: golden outputs per profile × recorded box, purity, atomicity, --check."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hearthnet import config
from hearthnet.errors import HearthNetError
from hearthnet.provision import hardware, profiles, render, site
from hearthnet.provision.effective import effective

ROOT = profiles.PROFILES_DIR.parent
BOXES = ROOT / "tests" / "fixtures" / "hardware"
GOLDEN = ROOT / "tests" / "golden" / "render"
SITE_FILE = profiles.PROFILES_DIR / "examples" / "site.yaml"
UPDATE = os.environ.get("HEARTHNET_UPDATE_GOLDEN") == "1"  # HEARTHNET_UPDATE_GOLDEN=1 pytest ...; then review the diff


def files_for(profile: str, box: str) -> dict[str, bytes]:
    eff = effective(profile, hardware.load_facts(BOXES / f"{box}.json"))
    return render.render_files(eff, inputs={"profile": (profiles.PROFILES_DIR / f"{profile}.yaml").read_bytes()})


@pytest.mark.parametrize("box", sorted(p.stem for p in BOXES.glob("*.json")))
@pytest.mark.parametrize("profile", profiles.NAMES)
def test_golden(profile, box):
    files = files_for(profile, box)
    assert set(files) == set(render.FILES)
    d = GOLDEN / f"{profile}-{box}"
    if UPDATE:
        d.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (d / name).write_bytes(data)
    assert {name: (d / name).read_bytes() for name in render.FILES} == files, "rendered output changed: HEARTHNET_UPDATE_GOLDEN=1 and review"
    assert files_for(profile, box) == files  # pure: the same inputs, the same bytes


def test_rendered_files_mean_what_the_profile_says(tmp_path):
    s = site.load_site(SITE_FILE)
    kitchen = effective("hearth", hardware.load_facts(BOXES / "minipc-16gb.json"), site=s, host="kitchen")
    files = render.render_files(kitchen, site=s)
    assert render.write(tmp_path / "kitchen", files)
    cfg = config.load(tmp_path / "data", tmp_path / "kitchen" / "hearthnet.toml")
    assert cfg.identity.profile == "hearth" and cfg.llm.backends[0].name == "llama_cpp" and cfg.discovery.static_peers == ["https://mill-server.local:7080"]
    lock = json.loads(files["models.lock.json"])["models"]
    assert {m["id"] for m in lock} == {"smollm2-135m-instruct-q4_1", "all-minilm-l6-v2"} and all(len(m["sha256"]) == 64 for m in lock)
    assert [c["corpus"] for c in json.loads(files["corpora.json"])["corpora"]] == ["hearthnet_docs", "village_handbook", "workspace"]
    assert json.loads(files["bootstrap.json"])["action"] == "redeem_invite"
    unit = files["hearthnet.service"].decode()
    assert all(k in unit for k in ("DynamicUser=yes", "StateDirectory=hearthnet", "ProtectSystem=strict", "NoNewPrivileges=yes"))
    receipt = json.loads(files["receipt.json"])
    assert receipt["outputs"]["hearthnet.toml"] and not any(k in receipt for k in ("ts", "time", "rendered_at", "created_at"))
    anchor = render.render_files(effective("anchor", hardware.load_facts(BOXES / "gpu-24gb.json"), site=s, host="mill-server"), site=s)
    assert json.loads(anchor["bootstrap.json"])["action"] == "create_community" and "Requires=ollama.service" in anchor["hearthnet.service"].decode()
    dev = render.render_files(effective("hearth", hardware.load_facts(BOXES / "laptop-8gb-nogpu.json"), site=s, host="teachers-laptop"), site=s)
    assert "# Relaxed (dev)" in dev["hearthnet.service"].decode() and 'host = "127.0.0.1"' in dev["hearthnet.toml"].decode()
    assert 'log_level = "debug"' in dev["hearthnet.toml"].decode() and json.loads(dev["receipt.json"])["mode"] == "dev"
    spark = render.render_files(effective("spark", hardware.load_facts(BOXES / "pi4-4gb.json")))
    assert json.loads(spark["models.lock.json"])["models"] == [] and '"llm.chat"' in spark["hearthnet.toml"].decode()


def test_a_failed_render_leaves_the_previous_output(tmp_path):
    good = files_for("hearth", "minipc-16gb")
    out = tmp_path / "out"
    render.write(out, good)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = {**good, "hearthnet.toml": good["hearthnet.toml"] + b"\n[transport]\nport = 99999999\n"}
    with pytest.raises(HearthNetError) as e:
        render.write(out, bad)
    assert e.value.code == "config_invalid"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary directory left behind


def cli(*args):
    return subprocess.run([sys.executable, "-m", "hearthnet", "render-profile", *args], capture_output=True, text=True, timeout=120)


def test_cli_all_hosts_check_and_bad_site(tmp_path):
    out = tmp_path / "rendered"
    p = cli("--site", str(SITE_FILE), "--all", "--out", str(out), "--hardware", str(BOXES / "minipc-16gb.json"))
    assert p.returncode == 0, p.stderr
    assert sorted(d.name for d in out.iterdir()) == sorted(site.load_site(SITE_FILE).hosts)
    assert cli("--site", str(SITE_FILE), "--all", "--out", str(out), "--hardware", str(BOXES / "minipc-16gb.json"), "--check").returncode == 0
    p = cli("--site", str(SITE_FILE), "--all", "--out", str(out), "--hardware", str(BOXES / "pi4-4gb.json"), "--check")
    assert p.returncode == 6 and p.stdout.startswith("--- a/")
    before = {f: f.read_bytes() for f in out.rglob("*") if f.is_file()}
    broken = tmp_path / "site.yaml"
    broken.write_text(SITE_FILE.read_text().replace("profile: spark", "profile: castle"))
    p = cli("--site", str(broken), "--all", "--out", str(out))
    assert p.returncode == 2 and p.stderr.startswith("error[config_invalid]") and "hosts.shop-pi.profile" in p.stderr
    assert {f: f.read_bytes() for f in out.rglob("*") if f.is_file()} == before
    assert cli("--profile", "hearth", "--site", str(SITE_FILE), "--out", str(out)).returncode == 2


def test_detect_renders_the_same_bytes_twice(tmp_path):
    assert cli("--profile", "hearth", "--detect", "--out", str(tmp_path / "a")).returncode == 0
    assert cli("--profile", "hearth", "--detect", "--out", str(tmp_path / "a"), "--check").returncode == 0
    assert Path(tmp_path / "a" / "receipt.json").is_file()


def test_install_inputs_shape_the_unit_and_the_receipt(tmp_path):
    eff = effective("hearth", hardware.load_facts(BOXES / "minipc-16gb.json"))
    venv = render.Install(exec="/opt/hearthnet/venv/bin/hearthnet", user="hearthnet", config_dir="/etc/hearthnet/rendered")
    unit = render.render_files(eff, install=venv)["hearthnet.service"].decode()
    assert "ExecStart=/opt/hearthnet/venv/bin/hearthnet --data-dir /var/lib/hearthnet --config /etc/hearthnet/rendered/hearthnet.toml run" in unit
    assert "User=hearthnet\nGroup=hearthnet\n" in unit and "DynamicUser" not in unit and "ProtectSystem=strict" in unit
    receipt = json.loads(render.render_files(eff, install=venv)["receipt.json"])
    assert receipt["install"] == {"exec": "/opt/hearthnet/venv/bin/hearthnet", "user": "hearthnet", "config_dir": "/etc/hearthnet/rendered"}
    default = render.render_files(eff)
    assert "DynamicUser=yes" in default["hearthnet.service"].decode() and "\nUser=" not in default["hearthnet.service"].decode()
    assert json.loads(default["receipt.json"])["install"]["user"] is None
    for bad in ({"exec": "hearthnet"}, {"exec": "/opt/my venv/bin/hearthnet"}, {"exec": "/usr/bin/x\nExecStartPre=/bin/sh"},
                {"exec": "/usr/bin/%n"}, {"config_dir": "/etc/../tmp"}, {"user": "root"}, {"user": "Bad User"}, {"user": ""}):
        with pytest.raises(HearthNetError) as e:
            render.Install(**bad)
        assert e.value.code == "bad_request"


def test_cli_json_reports_changed_honestly(tmp_path):
    out = tmp_path / "r"
    args = ("--profile", "spark", "--hardware", str(BOXES / "pi4-4gb.json"), "--out", str(out), "--json",
            "--exec", "/opt/hearthnet/venv/bin/hearthnet", "--user", "hearthnet")
    first, second = cli(*args), cli(*args)
    assert json.loads(first.stdout) == {"dir": str(out), "changed": True}
    assert json.loads(second.stdout) == {"dir": str(out), "changed": False}
    check = cli(*args, "--check")
    assert check.returncode == 0 and json.loads(check.stdout) == {"dir": str(out), "changed": False, "diff": ""}
    other = cli(*args[:-4], "--check")  # back to the defaults: the unit and the receipt would change
    assert other.returncode == 6 and json.loads(other.stdout)["changed"] is True and "-User=hearthnet" in json.loads(other.stdout)["diff"]
    bad = cli(*args[:-1], "root")
    assert bad.returncode == 2 and bad.stderr.startswith("error[bad_request]: --user 'root'") and bad.stdout == ""


def test_settings_merge_over_the_rendered_config(tmp_path):
    """--settings (the NixOS module's `settings`): tables merge key by key, the file is a receipt
    input, the comments stay, and a bad file is refused naming itself with nothing written."""
    settings = tmp_path / "settings.toml"
    settings.write_text('[transport]\nport = 7443\n[ui]\nhost = "0.0.0.0"\n[discovery]\nstatic_peers = ["https://10.0.0.1:7080"]\n')
    out = tmp_path / "r"
    args = ("--profile", "spark", "--hardware", str(BOXES / "pi4-4gb.json"), "--out", str(out))
    assert cli(*args, "--settings", str(settings)).returncode == 0
    text = (out / "hearthnet.toml").read_text()
    assert text.startswith("# Rendered by hearthnet render-profile")
    loaded = config.load(tmp_path / "d", out / "hearthnet.toml")
    assert (loaded.transport.port, loaded.ui.host, loaded.discovery.static_peers) == (7443, "0.0.0.0", ["https://10.0.0.1:7080"])
    assert loaded.transport.rate_soft_rps_per_cap == 5.0 and loaded.identity.profile == "spark"  # the rest of [transport] stays
    receipt = json.loads((out / "receipt.json").read_text())
    assert receipt["inputs"]["settings"] == render._sha(settings.read_bytes())
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    for body, code, words in (('[transport]\nport = "x"\n', "config_invalid", "transport.port"),
                              ("[castle]\nmoat = 1\n", "config_invalid", "castle"),
                              ("[transport\n", "config_invalid", "not valid TOML"),
                              ('[ui]\nhost = "0.0.0.0"\nbogus = 1\n', "config_invalid", "ui.bogus")):
        settings.write_text(body)
        p = cli(*args, "--settings", str(settings))
        assert p.returncode == 2 and p.stderr.startswith(f"error[{code}]: {settings}") and words in p.stderr, p.stderr
        assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    assert render.with_settings("[a]\nx = 1\n", None) == "[a]\nx = 1\n"
    # JSON by its suffix (what Ansible hands over): the same merge, the same errors.
    as_json = tmp_path / "settings.json"
    as_json.write_text(json.dumps({"transport": {"port": 7443}}))
    assert cli(*args, "--settings", str(as_json)).returncode == 0
    assert config.load(tmp_path / "d", out / "hearthnet.toml").transport.port == 7443
    for body, words in (("[1, 2]", "a JSON object"), ("{", "not valid JSON"), ('{"transport": {"port": "x"}}', "transport.port")):
        as_json.write_text(body)
        p = cli(*args, "--settings", str(as_json))
        assert p.returncode == 2 and p.stderr.startswith(f"error[config_invalid]: {as_json}") and words in p.stderr, p.stderr
