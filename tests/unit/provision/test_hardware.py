"""Hardware facts: this machine, recorded boxes, fake /proc and /sys trees, tiers and the rendered subset."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from hearthnet.errors import HearthNetError
from hearthnet.provision import hardware

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT / "profiles" / "schemas" / "hardware.schema.json"
BOXES = ROOT / "tests" / "fixtures" / "hardware"


def test_the_schema_file_is_the_models_schema():
    assert json.loads(SCHEMA.read_text()) == json.loads(json.dumps(hardware.schema(), sort_keys=True))


def test_this_machine():
    facts = hardware.detect()
    doc = facts.model_dump(mode="json")
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(doc)
    assert facts.arch != "unknown" and facts.ram_gb and facts.ram_gb > 0 and facts.cpu.threads >= 1 and facts.disk_free_gb > 0
    # Detecting twice renders the same: nothing that drifts (free disk, addresses) is in the subset.
    assert hardware.render_facts(facts) == hardware.render_facts(hardware.detect())
    assert set(hardware.render_facts(facts)) == {"arch", "cores", "ram_tier_gb", "vram_tier_gb", "gpu_model", "raspberry_pi", "tier"}


@pytest.mark.parametrize("box, tier, ram_tier", [
    ("pi4-4gb", "micro", 4), ("laptop-8gb-nogpu", "small", 8), ("minipc-16gb", "cpu", 16), ("gpu-24gb", "gpu-xl", 64),
])
def test_recorded_boxes_get_their_tier(box, tier, ram_tier):
    facts = hardware.load_facts(BOXES / f"{box}.json")
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(json.loads((BOXES / f"{box}.json").read_text()))
    r = hardware.render_facts(facts)
    assert (r["tier"], r["ram_tier_gb"]) == (tier, ram_tier)


def test_tier_boundaries():
    def t(ram, vram=None, vendor="nvidia"):
        gpus = [hardware.Gpu(vendor=vendor, model="x", vram_gb=vram, source="nvidia-smi")] if vram is not None else []
        return hardware.tier(hardware.HardwareFacts(ram_gb=ram, gpus=gpus))

    assert [t(64, 24), t(64, 20), t(64, 19.9), t(64, 8), t(16, 6), t(12), t(11.9), t(6), t(5.9), t(None)] == \
        ["gpu-xl", "gpu-xl", "gpu", "gpu", "cpu", "cpu", "small", "small", "micro", "micro"]
    assert t(4, 16, vendor="intel") == "micro"  # shared-memory iGPUs do not count


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_a_raspberry_pi_tree(tmp_path):
    root = _tree(tmp_path, {
        "proc/cpuinfo": "processor\t: 0\nBogoMIPS\t: 108.00\n\nprocessor\t: 1\n\nprocessor\t: 2\n\nprocessor\t: 3\nHardware\t: BCM2835\n"
                        "Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
        "proc/meminfo": "MemTotal:        3884152 kB\nMemFree:  1000 kB\n",
        "proc/device-tree/model": "Raspberry Pi 4 Model B Rev 1.4\x00",
        "sys/class/net/lo/operstate": "unknown\n",
        "sys/class/net/eth0/address": "dc:a6:32:01:02:03\n",
        "sys/class/net/eth0/operstate": "up\n",
        "sys/class/net/wlan0/operstate": "down\n",
        "sys/class/net/wlan0/wireless/.keep": "",
    })
    f = hardware.detect(root)
    assert f.cpu.model == "Raspberry Pi 4 Model B Rev 1.4" and f.cpu.threads == 4 and f.cpu.cores == 4
    assert f.ram_gb == 3.7 and f.raspberry_pi == "Raspberry Pi 4 Model B Rev 1.4"
    assert [(i.name, i.up, i.wireless) for i in f.interfaces] == [("eth0", True, False), ("wlan0", False, True)]
    assert hardware.render_facts(f)["tier"] == "micro" and "gpus" in f.unknown


def test_an_amd_gpu_from_sysfs_named_by_lspci(tmp_path):
    root = _tree(tmp_path, {
        "proc/meminfo": "MemTotal:       32768000 kB\n",
        "sys/class/drm/card0/device/vendor": "0x1002\n",
        "sys/class/drm/card0/device/mem_info_vram_total": str(16 * 2**30) + "\n",
    })
    lspci = '03:00.0 "VGA compatible controller" "Advanced Micro Devices, Inc. [AMD/ATI]" "Navi 21 [Radeon RX 6800]" -r c1 "" ""\n'
    f = hardware.detect(root, run=lambda cmd: lspci if cmd[0] == "lspci" else None)
    assert [(g.vendor, g.vram_gb, g.source) for g in f.gpus] == [("amd", 16.0, "sysfs")]
    assert "Radeon RX 6800" in f.gpus[0].model and hardware.tier(f) == "gpu"


def test_nvidia_smi_output_is_read(tmp_path):
    f = hardware.detect(tmp_path, run=lambda cmd: "NVIDIA GeForce RTX 4090, 24564\nNVIDIA RTX A2000, 6138\n" if cmd[0] == "nvidia-smi" else None)
    assert [(g.model, g.vram_gb) for g in f.gpus] == [("NVIDIA GeForce RTX 4090", 24.0), ("NVIDIA RTX A2000", 6.0)]


def test_an_empty_tree_degrades_to_unknown(tmp_path):
    f = hardware.detect(tmp_path)
    assert f.cpu.model == "unknown" and f.ram_gb is None and f.gpus == [] and set(f.unknown) >= {"cpu", "ram", "gpus", "interfaces"}
    assert hardware.tier(f) == "micro"


def test_bad_facts_files(tmp_path):
    bad = tmp_path / "facts.json"
    bad.write_text(json.dumps({"schema_version": 1, "ram_gb": -3}))
    with pytest.raises(HearthNetError) as e:
        hardware.load_facts(bad)
    assert e.value.code == "config_invalid" and "ram_gb" in e.value.message and str(bad) in e.value.message
    with pytest.raises(HearthNetError) as e:
        hardware.load_facts(tmp_path / "missing.json")
    assert e.value.code == "not_found"


def test_cli(tmp_path):
    out = tmp_path / "facts.json"
    p = subprocess.run([sys.executable, "-m", "hearthnet", "detect-hardware", "--json", "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == json.loads(out.read_text()) and hardware.load_facts(out).arch != "unknown"
    p = subprocess.run([sys.executable, "-m", "hearthnet", "detect-hardware"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "tier" in p.stdout


def test_stable_facts_drop_what_changes_between_runs(tmp_path):
    live = hardware.detect()
    s = hardware.stable(live)
    assert s.disk_free_gb is None and s.interfaces == [] and not set(s.unknown) & set(hardware.VOLATILE)
    assert hardware.render_facts(s) == hardware.render_facts(live)  # nothing the renderer reads is lost
    p = subprocess.run([sys.executable, "-m", "hearthnet", "detect-hardware", "--stable", "--json"], capture_output=True, text=True, timeout=60)
    q = subprocess.run([sys.executable, "-m", "hearthnet", "detect-hardware", "--stable", "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == q.stdout and json.loads(p.stdout)["disk_free_gb"] is None
    (tmp_path / "f.json").write_text(p.stdout)
    assert hardware.load_facts(tmp_path / "f.json") == s
