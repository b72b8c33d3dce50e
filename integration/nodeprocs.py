"""Real `hearthnet run` processes on loopback, driven through the CLI (shared by integration tests).

Every process started through `Procs` is stopped by the `procs` fixture, also when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HN = [sys.executable, "-m", "hearthnet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(d: Path, *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    p = subprocess.run([*HN, "--data-dir", str(d), *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    if check and p.returncode != 0:
        raise AssertionError(f"hearthnet {' '.join(args)} -> {p.returncode}: {p.stderr}")
    return p


class Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, d: Path, port: int, peers: list[int], extra_env: dict[str, str] | None = None, prefix: list[str] | None = None) -> subprocess.Popen:
        env = {
            **os.environ,
            "HEARTHNET_DISCOVERY__MANIFEST_REFRESH_SECONDS": "0.5",
            "HEARTHNET_EVENTS__SYNC_INTERVAL_SECONDS": "0.5",
            "HEARTHNET_DISCOVERY__MDNS_ENABLED": "false",
            "HEARTHNET_DISCOVERY__UDP_ENABLED": "false",
            "HEARTHNET_DISCOVERY__STATIC_PEERS": json.dumps([f"https://127.0.0.1:{p}" for p in peers]),
            **(extra_env or {}),
        }
        cmd = (prefix or HN) + ["--data-dir", str(d), "run", "--host", "127.0.0.1", "--port", str(port)]
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(d / "run.log", "w"))
        self.procs.append(p)
        deadline = time.monotonic() + 30
        while not (d / "run" / "node.json").exists():
            if p.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"node did not start: {(d / 'run.log').read_text()}")
            time.sleep(0.05)
        return p

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def wait_until(pred, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def community(procs: Procs, dirs: list[Path], ports: list[int], name: str, anchor_env: dict[str, str] | None = None) -> dict[int, str]:
    """Init every data dir, run dirs[0] as the anchor (peers: the other ports), and add and join the others.
    Returns the node ids of dirs[1:] by index; starting those nodes is the caller's."""
    cli(dirs[0], "init", "--create-community", name)
    for d in dirs[1:]:
        cli(d, "init")
    procs.start(dirs[0], ports[0], ports[1:], anchor_env)
    ids = {}
    for i, d in enumerate(dirs[1:], 1):
        ids[i] = json.loads(cli(d, "id", "--json").stdout)["node_id"]
        cli(dirs[0], "member", "add", ids[i])
        cli(d, "join", f"https://127.0.0.1:{ports[0]}")
    return ids
