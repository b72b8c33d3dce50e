"""Running ansible/site.yml from this machine (the controller) against the lab's VMs.

The inventory is written per test: each VM's management port on the lab namespace's
loopback, the image's SSH key, and the test's site and bundle. ansible-playbook runs
inside the namespace; its output is read as it comes so the wall time of every play
is recorded, and the PLAY RECAP is parsed per host.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from machine import Lab

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent
# The install role's debug line. The yaml result format wraps it over lines inside single quotes
# (json: double quotes); bundle file names hold neither, and wrapping breaks only at spaces.
PLACED = re.compile(r"bundle placed on (?P<host>\S+): (?P<files>[^'\"]*)")
RECAP = re.compile(r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)")


@dataclass
class Run:
    rc: int
    output: str
    seconds: float
    plays: list[tuple[str, float]] = field(default_factory=list)  # (play name, seconds)
    recap: dict[str, dict[str, int]] = field(default_factory=dict)
    tasks: int = 0  # task headers seen
    task_times: list[tuple[str, float]] = field(default_factory=list)  # (task name, seconds), in order

    def placed(self) -> dict[str, list[str]]:
        """host -> the bundle files the install role moved into place in this run."""
        got: dict[str, list[str]] = {}
        for m in PLACED.finditer(self.output):
            got.setdefault(m["host"], []).extend(m["files"].split())
        return got

    def changed(self) -> dict[str, int]:
        return {h: r["changed"] for h, r in self.recap.items()}

    def slowest(self, n: int = 12) -> list[tuple[str, float]]:
        return sorted(self.task_times, key=lambda t: -t[1])[:n]

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def bundle_part(bundle: Path, extras: list[str]) -> list[str]:
    """The files of the bundle a box with these extras is sent (the install role's part of it):
    its extras' wheels (wheels.json), the installer (tools/uv), every model, corpus and plan."""
    wheels = set(json.loads((bundle / "wheels.json").read_text())["sets"][",".join(sorted(extras))])
    names = [line.split("  ", 1)[1] for line in (bundle / "SHA256SUMS").read_text().splitlines()]
    return sorted(n for n in names if not n.startswith("wheels/") or n.removeprefix("wheels/") in wheels)


def inventory(lab: Lab, path: Path, *, site: Path, bundle: Path, work: Path, groups: dict[str, list[str]],
              host_vars: dict[str, dict[str, object]] | None = None) -> Path:
    hosts = {name: {"ansible_host": "127.0.0.1", "ansible_port": vm.ssh_port, **(host_vars or {}).get(name, {})} for name, vm in lab.vms.items()}
    doc = {"all": {
        "vars": {
            "hearthnet_site_file": str(site), "hearthnet_bundle_dir": str(bundle), "hearthnet_controller_dir": str(work),
            "hearthnet_controller_exec": str(BIN / "hearthnet"), "ansible_user": "root",
            "ansible_ssh_private_key_file": str(lab.image.key),
            # The lab's own ControlPath (Lab.control_dir): testinfra takes it from here too.
            "ansible_ssh_common_args": f"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ServerAliveInterval=15 -o ControlPath={lab.control_dir}/%C",
        },
        "children": {g: {"hosts": {h: hosts[h] for h in members}} for g, members in groups.items() if members},
    }}
    path.write_text(yaml.safe_dump(doc, sort_keys=True))
    return path


def _header(line: str) -> tuple[str, str]:
    """("play" | "task" | "recap" | "", name) of one line of ansible's output."""
    for prefix, kind in (("PLAY [", "play"), ("TASK [", "task"), ("RUNNING HANDLER [", "task"), ("PLAY RECAP", "recap")):
        if line.startswith(prefix):
            return kind, line[len(prefix):].rsplit("]", 1)[0] if kind != "recap" else ""
    return "", ""


def play(lab: Lab, inv: Path, *extra: str, timeout: float = 3600, kill_at_task: int | None = None) -> Run:
    """ansible-playbook site.yml inside the lab's namespace. `kill_at_task`: SIGKILL it (and its
    SSH connections) once the Nth task has started, as a power cut on the controller would.
    The output also goes, line by line, to ansible-N.log in the lab's work dir (to follow a long run)."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
           "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", "PYTHONUNBUFFERED": "1"}
    argv = lab.cmd([str(BIN / "ansible-playbook"), "-i", str(inv), "site.yml", *extra])
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ANSIBLE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    plays: list[tuple[str, float]] = []
    current: tuple[str, float] | None = None
    task: tuple[str, float] | None = None
    task_times: list[tuple[str, float]] = []
    tasks = 0
    assert proc.stdout is not None
    log = open(lab.workdir / f"ansible-{len(list(lab.workdir.glob('ansible-*.log'))) + 1}.log", "w")
    # A watchdog, not a check per output line: one silent task (a long pip install) would
    # otherwise be noticed only when ansible next prints something.
    overran = threading.Event()

    def _overrun() -> None:
        overran.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)

    watchdog = threading.Timer(timeout, _overrun)
    watchdog.daemon = True
    watchdog.start()
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            log.write(line)
            log.flush()
            now = time.monotonic()
            kind, name = _header(line)
            if kind in ("play", "recap"):
                if current is not None:
                    plays.append((current[0], round(now - current[1], 1)))
                current = (name, now) if kind == "play" else None
            if kind:
                if task is not None:
                    task_times.append((task[0], round(now - task[1], 1)))
                    log.write(f"# {task_times[-1][1]:.1f} s: {task[0]}\n")  # each task's wall time, for reading a run later
                task = (name, now) if kind == "task" else None
            tasks += line.startswith("TASK [")
            if kill_at_task is not None and tasks >= kill_at_task:
                time.sleep(1)  # into the task, not before it
                os.killpg(proc.pid, 9)
                break
        rc = proc.wait(60)
    finally:
        watchdog.cancel()
        log.close()
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(10)
    if overran.is_set():
        raise TimeoutError(f"ansible-playbook ran over {timeout:.0f}s:\n" + "\n".join(lines[-40:]))
    run = Run(rc, "\n".join(lines), round(time.monotonic() - t0, 1), plays, tasks=tasks, task_times=task_times)
    for line in lines:
        m = RECAP.match(line)
        if m:
            run.recap[m["host"]] = {k: int(v) for k, v in m.groupdict().items() if k != "host"}
    return run


def have_ansible() -> str | None:
    for tool in ("ansible-playbook", "ansible-lint"):
        if not (BIN / tool).exists() and shutil.which(tool) is None:
            return f"{tool} is not installed (the dev extra)"
    return None
