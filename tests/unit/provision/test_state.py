"""The state record: one section per phase, read off the box, rewritten only when it changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hearthnet.errors import HearthNetError
from hearthnet.home import Home
from hearthnet.provision import hardware, render
from hearthnet.provision.actions import state
from hearthnet.storage import sha256_of

BOXES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"
RUNNING = {"is-enabled": "enabled", "is-active": "active"}


@pytest.fixture
def box(tmp_path):
    out = tmp_path / "rendered"
    render.write(out, render.profile_files("spark", hardware.load_facts(BOXES / "pi4-4gb.json")))
    h = Home.open(tmp_path / "data", out / "hearthnet.toml")
    h.init()
    return h, out


def test_sections_are_read_off_the_box_and_rewritten_only_on_change(box):
    h, out = box
    sec = state.render(h, render_dir=out)
    assert set(sec["files"]) == set(render.FILES) and sec["profile"] == "spark"
    assert state.record(h, {"render": sec}, "ansible", profile="spark") is True
    assert state.record(h, {"render": state.render(h, render_dir=out)}, "ansible", profile="spark") is False
    assert state.record(h, {"service": state.service(h, systemctl=RUNNING.__getitem__)}, "ansible") is True
    assert state.record(h, {"community": state.community(h)}, "ansible") is True
    doc = json.loads((h.data_dir / "state.json").read_text())
    assert doc["applied_by"] == "ansible" and doc["profile"] == "spark" and doc["version"] == 1
    assert set(doc["phases"]) == {"render", "service", "community"}
    assert doc["phases"]["service"] == {"unit": "hearthnet.service", "enabled": True, "active": True}
    assert doc["phases"]["community"]["member"] is False and doc["phases"]["community"]["node_id"] == h.identity().node_id
    # A rendered file changed on the box: the record says so (its hash), in the same section, not appended.
    (out / "hearthnet.toml").write_text((out / "hearthnet.toml").read_text() + "\n")
    assert state.record(h, {"render": state.render(h, render_dir=out)}, "ansible") is True
    assert json.loads((h.data_dir / "state.json").read_text())["phases"]["render"]["files"]["hearthnet.toml"] != sec["files"]["hearthnet.toml"]


def test_bad_phase_applier_or_damaged_record(box):
    h, out = box
    for phase, who in (("deploy", "ansible"), ("render", "puppet")):
        with pytest.raises(HearthNetError) as e:
            state.record(h, {phase: {}}, who)
        assert e.value.code == "bad_request"
    (h.data_dir / "state.json").write_text("{not json")
    assert state.record(h, {"render": state.render(h, render_dir=out)}, "nixos") is True  # replaced, not trusted
    assert json.loads((h.data_dir / "state.json").read_text())["applied_by"] == "nixos"
    with pytest.raises(HearthNetError) as e:
        state.install(h, bundle=None, exec_path=None, extras=[])
    assert e.value.code == "bad_request"
    with pytest.raises(HearthNetError):
        state.install(h, bundle=None, exec_path="/opt/hearthnet/venv/bin/hearthnet", extras=[])


def test_a_nixos_box_records_its_store_path(box):
    h, _ = box
    exe = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hearthnet-full-0.1.0/bin/hearthnet"
    sec = state.install(h, bundle=None, exec_path=exe, extras=["llm", "embed"])
    assert sec == {"exec": exe, "extras": ["embed", "llm"], "artifacts": {}, "store_path": exe.removesuffix("/bin/hearthnet")}


def test_cli_records_a_phase(box):
    h, out = box
    cmd = [sys.executable, "-m", "hearthnet", "--data-dir", str(h.data_dir), "--config", str(out / "hearthnet.toml"), "state", "record"]
    p = subprocess.run([*cmd, "render", "--applied-by", "ansible", "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["changed"] is True and json.loads(p.stdout)["sections"]["render"]["dir"] == str(out)
    again = subprocess.run([*cmd, "render", "--applied-by", "ansible", "--json"], capture_output=True, text=True, timeout=60)
    assert json.loads(again.stdout)["changed"] is False
    bad = subprocess.run([*cmd, "install", "--applied-by", "ansible", "--bundle", str(out)], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and bad.stderr.startswith("error[not_found]")


@pytest.fixture
def settled(tmp_path):
    """A box after a whole run: rendered, a member, every phase and the run's inputs recorded."""
    out = tmp_path / "rendered"
    render.write(out, render.profile_files("spark", hardware.load_facts(BOXES / "pi4-4gb.json")))
    h = Home.open(tmp_path / "data", out / "hearthnet.toml")
    h.init(create_community="Checkdorf")
    bundle = tmp_path / "bundle"
    (bundle / "wheels").mkdir(parents=True)
    (bundle / "wheels" / "a-1-py3-none-any.whl").write_bytes(b"wheel")
    (bundle / "SHA256SUMS").write_text(f"{sha256_of(bundle / 'wheels' / 'a-1-py3-none-any.whl')}  wheels/a-1-py3-none-any.whl\n")
    facts = {"arch": "x86_64", "ram_gb": 4.0}
    (tmp_path / "hardware.json").write_text(json.dumps(facts))
    (tmp_path / "unit").write_bytes((out / "hearthnet.service").read_bytes())
    sections = {"install": state.install(h, bundle=bundle, exec_path="/x/hearthnet", extras=[]), "render": state.render(h, render_dir=out),
                "models": state.models(h, render_dir=out), "community": state.community(h), "service": state.service(h, systemctl=RUNNING.__getitem__),
                "corpora": state.corpora(h, render_dir=out)}
    state.record(h, sections, "ansible", profile="spark", inputs="fingerprint-1")
    kw = dict(inputs="fingerprint-1", render_dir=out, bundle=bundle, hardware_file=tmp_path / "hardware.json", unit_file=tmp_path / "unit",
              systemctl=RUNNING.__getitem__, detect=lambda: facts)
    return h, out, bundle, kw


def test_check_holds_after_a_whole_run_and_names_every_difference(settled):
    h, out, bundle, kw = settled
    got = state.check(h, **kw)
    assert got == {"converged": True, "differs": [], "node_id": h.identity().node_id, "render_files": state.render(h, render_dir=out)["files"]}
    cases = [
        ({"inputs": "fingerprint-2"}, "inputs differ"),
        ({"systemctl": {"is-enabled": "enabled", "is-active": "inactive"}.__getitem__}, "service"),
        ({"detect": lambda: {"arch": "x86_64", "ram_gb": 8.0}}, "hardware"),
    ]
    for change, why in cases:
        got = state.check(h, **{**kw, **change})
        assert not got["converged"] and any(why in d for d in got["differs"]), (why, got)
    (kw["unit_file"]).write_text("edited")
    assert any(d.startswith("unit:") for d in state.check(h, **kw)["differs"])
    (kw["unit_file"]).write_bytes((out / "hearthnet.service").read_bytes())
    (out / "corpora.json").write_text((out / "corpora.json").read_text() + " ")
    assert state.check(h, **kw)["differs"] == ["render: the box differs from the record"]


def test_check_without_a_record_or_identity_is_a_difference_not_an_error(tmp_path, settled):
    h, out, bundle, kw = settled
    (h.data_dir / "state.json").unlink()
    got = state.check(h, **kw)
    assert not got["converged"] and "no record of phase install" in got["differs"]
    bare = Home.open(tmp_path / "bare", out / "hearthnet.toml")
    got = state.check(bare, **kw)
    assert not got["converged"] and got["node_id"] is None


def test_cli_records_several_phases_with_inputs_and_checks(settled):
    h, out, bundle, kw = settled
    base = [sys.executable, "-m", "hearthnet", "--data-dir", str(h.data_dir), "--config", str(out / "hearthnet.toml"), "state"]
    p = subprocess.run([*base, "record", "render", "corpora", "--applied-by", "ansible", "--inputs", "fingerprint-3", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert sorted(json.loads(p.stdout)["sections"]) == ["corpora", "render"]
    assert json.loads((h.data_dir / "state.json").read_text())["inputs"] == "fingerprint-3"
    p = subprocess.run([*base, "check", "--inputs", "fingerprint-3", "--bundle", str(bundle), "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    # This machine runs no hearthnet.service: the live unit differs from the recorded one.
    assert got["converged"] is False and any(d.startswith("service:") for d in got["differs"]), got
