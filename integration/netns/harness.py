"""Linux network namespaces joined by a bridge: one IP per node, real multicast.

    Switch namespace `<p>sw` holds bridges `br0` (and `br1` during a partition).
    Node i lives in namespace `<p>n<i>` with `eth0` = 10.77.<k>.<i+1>/24, the other
    end of its veth pair attached to a bridge in the switch namespace.

Traffic stays inside these namespaces. Everything created here is removed by
`close()`, also after a failure (and stale namespaces of a crashed run with the
same prefix are swept first). Needs root and iproute2.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def available() -> str | None:
    """None when the harness can run here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    probe = f"hnprobe{os.getpid()}"
    p = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if p.returncode != 0:
        return f"cannot create network namespaces: {p.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {p.stderr.strip()}")
    return p


@dataclass
class NsNode:
    index: int
    ns: str
    ip: str
    data_dir: Path
    port: int = 7080
    proc: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://{self.ip}:{self.port}"


class NetnsLab:
    def __init__(self, base: Path, n: int, subnet: int = 77) -> None:
        self.base = base
        self.prefix = f"hn{os.getpid() % 100000}"
        self.sw = f"{self.prefix}sw"
        self.subnet = subnet
        self.nodes = [NsNode(i, f"{self.prefix}n{i}", f"10.{subnet}.{os.getpid() % 200}.{i + 1}", base / f"node{i}") for i in range(n)]
        self.created: list[str] = []

    # --- network -------------------------------------------------------------------
    def sweep(self) -> None:
        for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.strip() else ""
            if name.startswith(self.prefix):
                sh("ip", "netns", "del", name, check=False)

    def up(self) -> None:
        self.sweep()
        sh("ip", "netns", "add", self.sw)
        self.created.append(self.sw)
        # No IGMP snooping: like a plain village switch, the bridge floods multicast.
        sh("ip", "-n", self.sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        sh("ip", "-n", self.sw, "link", "add", "br1", "type", "bridge", "mcast_snooping", "0")
        for br in ("br0", "br1", "lo"):
            sh("ip", "-n", self.sw, "link", "set", br, "up")
        for n in self.nodes:
            sh("ip", "netns", "add", n.ns)
            self.created.append(n.ns)
            host_end = f"v{n.index}"
            sh("ip", "-n", n.ns, "link", "add", "eth0", "type", "veth", "peer", "name", host_end, "netns", self.sw)
            sh("ip", "-n", n.ns, "addr", "add", f"{n.ip}/24", "dev", "eth0")
            sh("ip", "-n", n.ns, "link", "set", "eth0", "up")
            sh("ip", "-n", n.ns, "link", "set", "lo", "up")
            sh("ip", "-n", n.ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
            sh("ip", "-n", self.sw, "link", "set", host_end, "master", "br0")
            sh("ip", "-n", self.sw, "link", "set", host_end, "up")

    def observer(self) -> str:
        """An extra namespace on the bridge with no node in it (for standard tools)."""
        ns = f"{self.prefix}obs"
        ip = f"10.{self.subnet}.{os.getpid() % 200}.250"
        sh("ip", "netns", "add", ns)
        self.created.append(ns)
        sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "vobs", "netns", self.sw)
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        for dev in ("eth0", "lo"):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
        sh("ip", "-n", self.sw, "link", "set", "vobs", "master", "br0")
        sh("ip", "-n", self.sw, "link", "set", "vobs", "up")
        return ns

    def partition(self, side: list[int]) -> None:
        """Move the nodes in `side` to the second bridge: two halves that cannot talk."""
        for i in side:
            sh("ip", "-n", self.sw, "link", "set", f"v{i}", "master", "br1")

    def heal(self) -> None:
        for n in self.nodes:
            sh("ip", "-n", self.sw, "link", "set", f"v{n.index}", "master", "br0")

    # --- nodes -------------------------------------------------------------------------
    def exec(self, n: NsNode, *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = ["ip", "netns", "exec", n.ns, sys.executable, "-m", "hearthnet", "--data-dir", str(n.data_dir), *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **n.env, **(env or {})})
        if check and p.returncode != 0:
            raise RuntimeError(f"node{n.index}: hearthnet {' '.join(args)} -> {p.returncode}: {p.stderr.strip()}")
        return p

    def python(self, n: NsNode, code: str) -> str:
        p = subprocess.run(["ip", "netns", "exec", n.ns, sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(p.stderr)
        return p.stdout

    def bootstrap(self, community: str = "Netnsdorf") -> None:
        """init everywhere, community on node 0, members added; joins need node 0 running."""
        a = self.nodes[0]
        self.exec(a, "init", "--create-community", community, "--name", "node-0")
        for n in self.nodes[1:]:
            self.exec(n, "init", "--name", f"node-{n.index}")
            nid = json.loads(self.exec(n, "id", "--json").stdout)["node_id"]
            self.exec(a, "member", "add", nid)

    def start(self, n: NsNode, env: dict[str, str] | None = None) -> None:
        n.env.update({"HEARTHNET_TRANSPORT__ADVERTISE_HOST": n.ip, "HEARTHNET_DISCOVERY__MDNS_ENABLED": "true",
                      "HEARTHNET_DISCOVERY__UDP_ENABLED": "true", **(env or {})})
        log = open(n.data_dir / "run.log", "a")
        cmd = ["ip", "netns", "exec", n.ns, sys.executable, "-m", "hearthnet", "--data-dir", str(n.data_dir), "run", "--host", "0.0.0.0", "--port", str(n.port)]
        n.proc = subprocess.Popen(cmd, env={**os.environ, **n.env}, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 30
        while not (n.data_dir / "run" / "node.json").exists():
            if n.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"node{n.index} did not start: {(n.data_dir / 'run.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def kill(self, n: NsNode, sig: int = signal.SIGKILL) -> None:
        if n.proc is not None and n.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(n.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                n.proc.wait(timeout=15)
        if n.proc is not None and n.proc.poll() is None:
            os.killpg(n.proc.pid, signal.SIGKILL)
            n.proc.wait()
        n.proc = None
        with contextlib.suppress(FileNotFoundError):
            (n.data_dir / "run" / "node.json").unlink()

    def status(self, n: NsNode) -> dict[str, Any]:
        return json.loads(self.exec(n, "status", "--json").stdout)

    def close(self) -> None:
        for n in self.nodes:
            with contextlib.suppress(Exception):
                self.kill(n, signal.SIGTERM)
        for name in reversed(self.created):
            sh("ip", "netns", "del", name, check=False)
        self.created.clear()


__all__ = ["NetnsLab", "NsNode", "available", "sh"]
