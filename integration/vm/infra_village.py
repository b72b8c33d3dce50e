"""testinfra checks of a converged village, through the same Ansible inventory the playbook used.

Not collected by the suite (the name does not start with test_): test_village_vm.py runs it
inside the lab's network namespace, where the VMs' management ports are:

    pytest --noconftest integration/vm/infra_village.py --hosts=ansible://all --ansible-inventory=INV

with HEARTHNET_VM_WORK (the controller's work dir: its render of each host) and
HEARTHNET_VM_BUNDLE (the offline bundle) in the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

WORK = Path(os.environ.get("HEARTHNET_VM_WORK", "/nonexistent"))
BUNDLE = Path(os.environ.get("HEARTHNET_VM_BUNDLE", "/nonexistent"))
RENDERED = "/etc/hearthnet/rendered"
HN = ("sudo -u hearthnet env HEARTHNET_HOME=/var/lib/hearthnet HEARTHNET_CONFIG=/etc/hearthnet/rendered/hearthnet.toml NO_COLOR=1 "
      "/opt/hearthnet/venv/bin/hearthnet")


def _hn(host, args: str):
    return json.loads(host.check_output(f"{HN} {args}"))


def _name(host) -> str:
    return host.backend.get_hostname()


def test_unit_enabled_and_active(host):
    unit = host.service("hearthnet")
    assert unit.is_enabled and unit.is_running


def test_node_port_listening(host):
    assert host.socket("tcp://0.0.0.0:7080").is_listening


def test_rendered_files_are_the_controllers_render(host):
    mine = WORK / "render" / _name(host)
    names = sorted(p.name for p in mine.iterdir())
    assert sorted(host.file(RENDERED).listdir()) == names
    for n in names:
        assert host.file(f"{RENDERED}/{n}").sha256sum == hashlib.sha256((mine / n).read_bytes()).hexdigest(), n


def test_pinned_models_verify(host):
    lock = json.loads((WORK / "render" / _name(host) / "models.lock.json").read_text())
    report = _hn(host, "models verify --json")
    assert sorted(report["ok"]) == sorted(m["id"] for m in lock["models"])
    assert not (report["missing"] or report["mismatched"] or report["extra"])


def test_llama_cpp_loads_where_the_llm_extra_is_installed(host):
    """The library loads on the box as installed from the bundle (no apt there: a wheel that needs a
    system library the box lacks, libgomp once, fails here rather than at the first llm.chat)."""
    if not host.file("/opt/hearthnet/venv/lib/python3.11/site-packages/llama_cpp").exists:
        return  # a box without the llm extra
    report = _hn(host, "llama check --json")
    assert report["ok"] and "AVX2 = 1" in report["system_info"], report


def test_member_of_the_community(host):
    st = _hn(host, "status --json")
    assert st["community"] and st["level"] in ("anchor", "member"), st["level"]


def test_corpora_seeded(host):
    plan = json.loads((WORK / "render" / _name(host) / "corpora.json").read_text())
    wanted = {c["corpus"] for c in plan["corpora"]}
    if not wanted:
        return  # a box without RAG keeps no corpus
    have = {c["corpus"]: c for c in _hn(host, "rag list --json")}
    assert wanted <= set(have), sorted(have)
    assert all(have[c]["documents"] > 0 for c in wanted), have


def test_state_record(host):
    state = json.loads(host.file("/var/lib/hearthnet/state.json").content_string)
    mine = WORK / "render" / _name(host)
    receipt = json.loads((mine / "receipt.json").read_text())
    sums = dict(reversed(line.split("  ", 1)) for line in (BUNDLE / "SHA256SUMS").read_text().splitlines())
    phases = state["phases"]
    assert state["applied_by"] == "ansible" and state["profile"] == receipt["profile"]
    assert sorted(phases) == ["community", "corpora", "install", "models", "render", "service"]
    assert phases["service"]["enabled"] and phases["service"]["active"]
    assert phases["render"]["files"] == {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in mine.iterdir()}
    assert phases["install"]["artifacts"] and all(sums[n] == d for n, d in phases["install"]["artifacts"].items())
    # The box installed the wheels of its own extras, no more (a spark is not sent torch).
    part = json.loads((BUNDLE / "wheels.json").read_text())["sets"][",".join(phases["install"]["extras"])]
    assert sorted(phases["install"]["artifacts"]) == sorted(f"wheels/{w}" for w in part)
