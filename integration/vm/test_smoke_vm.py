"""One real VM provisioned by ansible/site.yml from this machine: converge from a fresh
Debian, the node answers /ready, the box holds exactly what the controller rendered for
it and the state record it should, a second run of every role changes nothing, a third
takes the fast path (the record of the last whole run holds: every role skipped) and
changes nothing, and --check --diff reports nothing to do; the guest reaches nothing outside its lab,
and the portable llama.cpp wheel's library loads on it. Each phase's wall time is printed.

The box is a lone anchor with the base package only (no LLM or embedding extras): a
spark or hearth cannot become ready without an anchor to join, and the full three-VM
scenario (test_village_vm.py) is too long for the README's test command.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from machine import reach_out
from playbook import BIN, ROOT, inventory, play

pytestmark = [pytest.mark.slow, pytest.mark.timeout(5400)]

SITE = {
    "community": {"name": "Smokedorf"},
    "bootstrap": ["https://10.77.0.11:7080"],
    "hosts": {"solo": {"profile": "anchor", "services": {"rag": False, "embedding": False}}},
}
EXPECTED = Path(__file__).parent / "expected" / "state-anchor-base.json"


def _bundle(tmp: Path) -> tuple[Path, Path, float]:
    import subprocess

    site = tmp / "site.yaml"
    site.write_text(yaml.safe_dump(SITE, sort_keys=False))
    t0 = time.monotonic()
    p = subprocess.run([str(BIN / "hearthnet"), "models", "bundle", "--site", str(site), "--hardware",
                        str(ROOT / "tests" / "fixtures" / "hardware" / "pi4-4gb.json"), "--wheel", str(ROOT), "--out", str(tmp / "bundle"), "--json"],
                       capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stderr
    return site, tmp / "bundle", time.monotonic() - t0


def _llama_loads_on_the_image(lab, vm) -> None:
    """The portable llama.cpp wheel (what every bundle with the llm extra carries) loads its library
    on a minimal Debian box, which gets nothing from apt: an OpenMP build needed libgomp.so.1 there
    and the village's anchor could not serve llm.chat. The box here installs no llm extra, so the
    wheel from the project's wheelhouse is unpacked on it and its library opened."""
    from hearthnet.provision.actions import llama_wheel

    entry = llama_wheel.wheelhouse_root() / llama_wheel.key(llama_wheel.portable_flags())
    if not (entry / "build.json").is_file():
        pytest.fail(f"no wheelhouse entry {entry}: install with `hearthnet llama install` (README)")
    wheel = llama_wheel.build().wheel_path  # reads the entry; builds nothing
    with wheel.open("rb") as f:
        subprocess.run(lab.cmd([*lab.ssh_argv(vm), "cat > /tmp/llama.whl"]), stdin=f, check=True, timeout=300)
    p = lab.ssh(vm, "cd /tmp && python3 -c 'import zipfile; zipfile.ZipFile(\"llama.whl\").extractall(\"llama\")' && "
                    "python3 -c 'import ctypes; ctypes.CDLL(\"/tmp/llama/llama_cpp/lib/libllama.so\")' && rm -rf /tmp/llama /tmp/llama.whl",
                check=False, timeout=300)
    assert p.returncode == 0, f"{wheel.name} does not load on the VM image: {p.stderr.strip()[-400:]}"


def test_one_box_converges_and_a_second_run_changes_nothing(lab_factory, tmp_path):
    times: dict[str, float] = {}
    site, bundle, times["bundle"] = _bundle(tmp_path)
    lab = lab_factory()
    t0 = time.monotonic()
    vm = lab.start("solo", memory="2G", cpus=2)
    times["boot"] = lab.wait_ssh(vm)
    # The guest reaches nothing outside its lab: not this machine on any address, not the LAN's
    # gateway (nobody is there), no DNS.
    seen, accepted = reach_out(lab, vm)
    assert accepted == 0 and "connected" not in seen.values() and seen["dns"] != "resolved", seen
    _llama_loads_on_the_image(lab, vm)
    inv = inventory(lab, tmp_path / "inventory.yml", site=site, bundle=bundle, work=tmp_path / "work",
                    groups={"anchors": ["solo"]},
                    # Settings of its own: the render role writes them for the box's renderer (a write that once left invalid JSON).
                    host_vars={"solo": {"hearthnet_extras": [], "hearthnet_settings": {"rag": {"ingest_timeout_seconds": 7200}}}})
    try:
        first = play(lab, inv)
        times["first run"] = first.seconds
        assert first.rc == 0 and first.recap["solo"]["failed"] == 0, first.tail()

        # The box: unit enabled and active, the node ready, files as the controller rendered them.
        sh = lambda cmd: lab.ssh(vm, cmd).stdout  # noqa: E731
        assert sh("systemctl is-enabled hearthnet.service; systemctl is-active hearthnet.service").split() == ["enabled", "active"]
        ready = json.loads(sh("sudo -u hearthnet HEARTHNET_HOME=/var/lib/hearthnet HEARTHNET_CONFIG=/etc/hearthnet/rendered/hearthnet.toml "
                              "/opt/hearthnet/venv/bin/hearthnet ready --json"))
        assert ready["ready"] is True
        mine = tmp_path / "work" / "render" / "solo"
        for f in sorted(mine.iterdir()):
            assert sh(f"sha256sum /etc/hearthnet/rendered/{f.name}").split()[0] == _sha(f), f.name
        assert sh("cat /etc/hearthnet/settings.json") == (tmp_path / "work" / "settings" / "solo.json").read_text()
        assert "ingest_timeout_seconds = 7200" in sh("cat /etc/hearthnet/rendered/hearthnet.toml")
        assert sh("stat -c '%U' /var/lib/hearthnet /var/lib/hearthnet/state.json /etc/hearthnet/rendered/hearthnet.toml").split() == ["hearthnet"] * 3
        assert sh("find /var/lib/hearthnet -user root | wc -l").strip() == "0"  # nothing root-owned in the data dir
        _state_matches(json.loads(sh("cat /var/lib/hearthnet/state.json")), bundle, mine)

        # Every role again (the fast path off): each is idempotent on its own.
        whole = play(lab, inv, "-e", "hearthnet_full_run=true")
        times["second run, every role"] = whole.seconds
        assert whole.rc == 0 and whole.changed() == {"localhost": 0, "solo": 0}, whole.tail()
        # The fast path: the record of the last whole run holds, so every role is skipped.
        second = play(lab, inv)
        times["third run, fast path"] = second.seconds
        assert second.rc == 0 and second.changed() == {"localhost": 0, "solo": 0}, second.tail()
        assert second.recap["solo"]["ok"] * 4 < whole.recap["solo"]["ok"], (second.recap, whole.recap)  # the roles were skipped
        check = play(lab, inv, "--check", "--diff")
        times["--check --diff"] = check.seconds
        assert check.rc == 0 and check.changed() == {"localhost": 0, "solo": 0}, check.tail()
    finally:
        times["total"] = time.monotonic() - t0
        print("\nVM smoke, wall time per phase: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()), flush=True)
        for name, runs in (("first", locals().get("first")), ("every role", locals().get("whole")), ("fast path", locals().get("second"))):
            if runs is not None:
                print(f"  {name} run plays: " + "; ".join(f"{p} {s:.0f} s" for p, s in runs.plays), flush=True)


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _state_matches(state: dict, bundle: Path, render: Path) -> None:
    """What does not depend on the run against the committed expectation; hashes against the bundle and the controller's render."""
    expected = json.loads(EXPECTED.read_text())
    sums = dict(reversed(line.split("  ", 1)) for line in (bundle / "SHA256SUMS").read_text().splitlines())
    phases = state["phases"]
    got = {
        "applied_by": state["applied_by"], "profile": state["profile"], "phases": sorted(phases),
        "install": {k: phases["install"][k] for k in ("exec", "extras")},
        "service": phases["service"], "community": {k: phases["community"][k] for k in ("member", "level", "name")},
        "corpora": phases["corpora"], "models": phases["models"], "render_files": sorted(phases["render"]["files"]),
    }
    assert got == expected
    assert phases["install"]["artifacts"] and all(sums[name] == digest for name, digest in phases["install"]["artifacts"].items())
    assert phases["render"]["files"] == {f.name: _sha(f) for f in render.iterdir()}
