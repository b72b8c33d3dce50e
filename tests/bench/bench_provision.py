"""Provisioning: bundle verification speed, and (with --vm) converging a real VM with Ansible.

Figures, each with a baseline measured in the same run:
- bundle verify: `hearthnet models bundle --verify` throughput vs `sha256sum -c` on the same
  bundle (page cache warm for both). Goal: >= 0.9x.
- with --vm (a QEMU VM under software emulation, tens of minutes):
  converge: `ansible-playbook site.yml` on a fresh VM vs the bare minimum on another fresh VM
  of the same image (copy the bundle, `pip install --no-index`, init, start the node by hand,
  wait for /ready). Goal: <= 1.5x.
  no-op: the second playbook run vs the first (the fast path: the box holds what the last
  whole run recorded). Goal: <= 0.15x. For reference, the same with every role applied.
--quick: the bundle figure only, on a small generated bundle.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import best_seconds, emit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "integration" / "vm"))

from hearthnet.provision.actions import bundle  # noqa: E402

MB = 1 << 20




def bench_verify(root: Path, mib: int) -> None:
    (root / "wheels").mkdir(parents=True)
    for i in range(4):
        with open(root / "wheels" / f"gen-{i}.whl", "wb") as fh:
            for k in range(mib):
                fh.write(hashlib.shake_256(f"{i}:{k}".encode()).digest(MB))
    (root / bundle.SUMS).write_text(bundle._sums(root))
    total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    ours = best_seconds(lambda: bundle.verify_bundle(root))
    theirs = best_seconds(lambda: subprocess.run(["sha256sum", "--check", "--quiet", "--strict", bundle.SUMS], cwd=root, check=True))
    emit("provision", f"bundle verify {total // MB} MiB", "throughput", total / MB / ours, "MiB/s", "sha256sum -c", total / MB / theirs, ">= 0.9x")


def bench_vm(work: Path) -> None:
    import json

    import yaml
    from image import build
    from machine import Lab
    from playbook import BIN, inventory, play

    site = work / "site.yaml"
    site.write_text(yaml.safe_dump({"community": {"name": "Benchdorf"}, "bootstrap": ["https://10.77.0.11:7080"],
                                    "hosts": {"box": {"profile": "anchor", "services": {"rag": False, "embedding": False}}}}))
    subprocess.run([str(BIN / "hearthnet"), "models", "bundle", "--site", str(site), "--hardware", str(ROOT / "tests/fixtures/hardware/pi4-4gb.json"),
                    "--wheel", str(ROOT), "--out", str(work / "bundle"), "--json"], check=True, capture_output=True, timeout=1800)
    img = build()
    # The bare minimum, by hand, on a fresh VM. Namespaces carry the pid, so a run beside another cannot take its lab.
    with Lab(img, work / "bare", ns=f"hnbb{os.getpid()}") as lab:
        vm = lab.start("box", memory="2G", cpus=2)
        lab.wait_ssh(vm)
        t0 = time.monotonic()
        tar = subprocess.Popen(["tar", "-C", str(work / "bundle"), "-cf", "-", "."], stdout=subprocess.PIPE)
        subprocess.run(lab.cmd([*lab.ssh_argv(vm), "mkdir -p /opt/b && tar -C /opt/b -xf -"]), stdin=tar.stdout, check=True, timeout=1800)
        tar.wait()
        parts = {"copy": time.monotonic() - t0}
        t = time.monotonic()
        lab.ssh(vm, "python3 -m venv /opt/v && /opt/v/bin/pip install -q --no-index --find-links /opt/b/wheels hearthnet", timeout=3600)
        parts["pip install"] = time.monotonic() - t
        t = time.monotonic()
        lab.ssh(vm, "/opt/v/bin/hearthnet --data-dir /var/lib/hn init --create-community Benchdorf >/dev/null && "
                    "systemd-run --unit hn-bare /opt/v/bin/hearthnet --data-dir /var/lib/hn run && "
                    "/opt/v/bin/hearthnet --data-dir /var/lib/hn ready --wait 900 >/dev/null", timeout=1800)
        parts["init, start, ready"] = time.monotonic() - t
        bare = time.monotonic() - t0
        print("bare minimum: " + ", ".join(f"{k} {v:.0f} s" for k, v in parts.items()), file=sys.stderr, flush=True)
    with Lab(img, work / "ansible", ns=f"hnba{os.getpid()}") as lab:
        vm = lab.start("box", memory="2G", cpus=2)
        lab.wait_ssh(vm)
        inv = inventory(lab, work / "inventory.yml", site=site, bundle=work / "bundle", work=work / "controller",
                        groups={"anchors": ["box"]}, host_vars={"box": {"hearthnet_extras": []}})
        first = play(lab, inv)
        assert first.rc == 0, first.tail()
        whole = play(lab, inv, "-e", "hearthnet_full_run=true")
        assert whole.rc == 0, whole.tail()
        second = play(lab, inv)
        assert second.rc == 0, second.tail()
    # Where the converge's time goes (stderr: stdout holds only the figures).
    for name, run in (("first run", first), ("every role", whole), ("no-op run", second)):
        print(f"{name}, slowest tasks: " + "; ".join(f"{t} {s:.0f} s" for t, s in run.slowest(20 if name == "first run" else 8)), file=sys.stderr, flush=True)
        print(f"{name}, {len(run.task_times)} tasks, {sum(s for _, s in run.task_times):.0f} s", file=sys.stderr, flush=True)
    emit("provision", "converge one box (anchor, base package)", "wall time", first.seconds, "s", "bare minimum by hand", round(bare, 1), "<= 1.5x",
         plays=json.dumps(first.plays))
    emit("provision", "second run, nothing to change", "wall time", second.seconds, "s", "first run", first.seconds, "<= 0.15x",
         changed=json.dumps(second.changed()))
    emit("provision", "second run, every role (fast path off)", "wall time", whole.seconds, "s", "first run", first.seconds, "none: for reference",
         changed=json.dumps(whole.changed()))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="the bundle figure only, small")
    p.add_argument("--vm", action="store_true", help="also converge real VMs (tens of minutes; needs root, QEMU, mmdebstrap)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="hearthnet-bench-") as t:
        bench_verify(Path(t) / "verify", 8 if a.quick else 256)
        if a.vm and not a.quick:
            bench_vm(Path(t))


if __name__ == "__main__":
    main()
