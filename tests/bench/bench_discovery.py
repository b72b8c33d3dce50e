"""Discovery: seconds from the moment the last node is ready until all N nodes list
each other (verified manifests), N = 5 and 10, in the netns harness (real multicast,
no peers configured). Baseline, same lab: bare UDP multicast processes that shout
their ids until each has heard all others (the network's own floor).

Needs root and iproute2; prints {"skipped": reason} lines otherwise.

    python tests/bench/bench_discovery.py [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from benchlib import args as parse_args
from benchlib import emit, tmpdir

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "integration" / "netns"))

from harness import NetnsLab, available  # noqa: E402

FAST = {"HEARTHNET_DISCOVERY__MANIFEST_REFRESH_SECONDS": "1", "HEARTHNET_EVENTS__SYNC_INTERVAL_SECONDS": "1",
        "HEARTHNET_DISCOVERY__UDP_INTERVAL_SECONDS": "2"}
SHOUT = """
import socket, struct, sys, time, json
me, n, group, port = sys.argv[1], int(sys.argv[2]), "239.255.77.77", 42577
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); r.bind(("", port))
r.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0")))
r.settimeout(0.05)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
heard, start, done = set(), time.time(), None
# Keep shouting for a second after hearing everyone, so late starters hear us too.
while (done is None or time.time() < done + 1.0) and time.time() - start < 60:
    if done is None and len(heard) >= n - 1: done = time.time()
    s.sendto(me.encode(), (group, port))
    until = time.time() + 0.05
    while time.time() < until:
        try:
            data, _ = r.recvfrom(256)
        except socket.timeout:
            break
        if data.decode() != me: heard.add(data.decode())
print(json.dumps({"t": done or time.time()}))
"""


def log_times(path: Path, n: int) -> tuple[float | None, float | None]:
    from hearthnet.clock import parse_iso

    started = full = None
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("msg") == "node started":
            started = parse_iso(rec["ts"])
        if rec.get("msg") == "peer verified" and rec.get("peers", 0) >= n - 1 and full is None:
            full = parse_iso(rec["ts"])
    return started, full


def measure(base: Path, n: int) -> tuple[float, float]:
    lab = NetnsLab(base, n)
    try:
        lab.up()
        lab.bootstrap()
        a = lab.nodes[0]
        lab.start(a, FAST)
        for node in lab.nodes[1:]:
            lab.exec(node, "join", a.url)
            (node.data_dir / "peers.json").unlink()
        for node in lab.nodes[1:]:
            lab.start(node, FAST)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            times = [log_times(node.data_dir / "run.log", n) for node in lab.nodes]
            if all(f is not None for _, f in times):
                break
            time.sleep(0.5)
        else:
            raise SystemExit(f"discovery of {n} nodes did not complete")
        ready = max(s for s, _ in times if s is not None)
        value = max(f for _, f in times if f is not None) - ready
        for node in lab.nodes:
            lab.kill(node)
        procs = [subprocess.Popen(["ip", "netns", "exec", node.ns, sys.executable, "-c", SHOUT, node.ns, str(n)], stdout=subprocess.PIPE, text=True)
                 for node in lab.nodes]
        last_start = time.time()
        ends = [json.loads(p.communicate(timeout=90)[0])["t"] for p in procs]
        baseline = max(ends) - last_start
        return value, baseline
    finally:
        lab.close()


def main() -> None:
    a = parse_args(default_n=10, quick_n=3)
    reason = available()
    sizes = [3] if a.quick else [5, 10]
    for n in sizes:
        if reason:
            print(json.dumps({"bench": "discovery", "case": f"{n} nodes", "skipped": reason}))
            continue
        with tmpdir() as d:
            value, baseline = measure(Path(d), n)
        emit("discovery", f"{n} nodes in network namespaces, nothing configured", "time_to_full_mesh", value, "s",
             "bare UDP multicast: all processes hear all", baseline, "< 5 s", nodes=n)


if __name__ == "__main__":
    main()
