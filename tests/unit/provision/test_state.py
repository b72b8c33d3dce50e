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

BOXES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"


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
    assert state.record(h, "render", "ansible", sec, profile="spark") is True
    assert state.record(h, "render", "ansible", state.render(h, render_dir=out), profile="spark") is False
    assert state.record(h, "service", "ansible", state.service(h, systemctl=lambda verb: {"is-enabled": "enabled", "is-active": "active"}[verb])) is True
    assert state.record(h, "community", "ansible", state.community(h)) is True
    doc = json.loads((h.data_dir / "state.json").read_text())
    assert doc["applied_by"] == "ansible" and doc["profile"] == "spark" and doc["version"] == 1
    assert set(doc["phases"]) == {"render", "service", "community"}
    assert doc["phases"]["service"] == {"unit": "hearthnet.service", "enabled": True, "active": True}
    assert doc["phases"]["community"]["member"] is False and doc["phases"]["community"]["node_id"] == h.identity().node_id
    # A rendered file changed on the box: the record says so (its hash), in the same section, not appended.
    (out / "hearthnet.toml").write_text((out / "hearthnet.toml").read_text() + "\n")
    assert state.record(h, "render", "ansible", state.render(h, render_dir=out)) is True
    assert json.loads((h.data_dir / "state.json").read_text())["phases"]["render"]["files"]["hearthnet.toml"] != sec["files"]["hearthnet.toml"]


def test_bad_phase_applier_or_damaged_record(box):
    h, out = box
    for phase, who in (("deploy", "ansible"), ("render", "puppet")):
        with pytest.raises(HearthNetError) as e:
            state.record(h, phase, who, {})
        assert e.value.code == "bad_request"
    (h.data_dir / "state.json").write_text("{not json")
    assert state.record(h, "render", "nixos", state.render(h, render_dir=out)) is True  # replaced, not trusted
    assert json.loads((h.data_dir / "state.json").read_text())["applied_by"] == "nixos"
    with pytest.raises(HearthNetError) as e:
        state.install(h, bundle=None, exec_path=None, extras=[])
    assert e.value.code == "bad_request"


def test_cli_records_a_phase(box):
    h, out = box
    cmd = [sys.executable, "-m", "hearthnet", "--data-dir", str(h.data_dir), "--config", str(out / "hearthnet.toml"), "state", "record"]
    p = subprocess.run([*cmd, "render", "--applied-by", "ansible", "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["changed"] is True and json.loads(p.stdout)["section"]["dir"] == str(out)
    again = subprocess.run([*cmd, "render", "--applied-by", "ansible", "--json"], capture_output=True, text=True, timeout=60)
    assert json.loads(again.stdout)["changed"] is False
    bad = subprocess.run([*cmd, "install", "--applied-by", "ansible", "--bundle", str(out)], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and bad.stderr.startswith("error[not_found]")
