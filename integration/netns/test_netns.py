"""Nodes in their own network namespaces on one bridge: real multicast discovery,
routing across the mesh, a node killed mid-stream, a partition healed."""

from __future__ import annotations

import json
import subprocess
import time

from harness import NetnsLab  # type: ignore[import-not-found]

FAST = {
    "HEARTHNET_DISCOVERY__MANIFEST_REFRESH_SECONDS": "1",
    "HEARTHNET_EVENTS__SYNC_INTERVAL_SECONDS": "1",
    "HEARTHNET_DISCOVERY__UDP_INTERVAL_SECONDS": "2",
}


def wait(pred, seconds, what="condition"):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            if pred():
                return time.monotonic()
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:  # a node still starting: its CLI fails or prints nothing yet
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {seconds}s (last error: {last})")


def bring_up(lab: NetnsLab, env_for=lambda i: {}) -> float:
    """Bootstrap, start the anchor, join and start the rest with no peers configured.
    Returns the monotonic time at which the last node was ready."""
    lab.bootstrap()
    a = lab.nodes[0]
    lab.start(a, {**FAST, **env_for(0)})
    for n in lab.nodes[1:]:
        lab.exec(n, "join", a.url)
        (n.data_dir / "peers.json").unlink()  # discovery must find everyone on its own
    for n in lab.nodes[1:]:
        lab.start(n, {**FAST, **env_for(n.index)})
    return time.monotonic()


def all_see_each_other(lab: NetnsLab) -> bool:
    want = len(lab.nodes) - 1
    return all(sum(1 for p in lab.status(n)["peers"] if p["verified"]) >= want for n in lab.nodes)


def test_five_nodes_discover_each_other_with_no_configuration(lab_factory):
    lab = lab_factory(5)
    ready = bring_up(lab)
    done = wait(lambda: all_see_each_other(lab), 60, "full discovery")
    print(f"discovery: 5 nodes listed each other {done - ready:.2f}s after the last was ready")
    st = lab.status(lab.nodes[3])
    sources = {p["source"] for p in st["peers"]}
    assert sources <= {"mdns", "udp"}, sources  # nothing configured
    assert {p["url"] for p in st["peers"]} == {n.url for n in lab.nodes if n.index != 3}


def test_each_discovery_mechanism_works_alone(lab_factory):
    for off in ("HEARTHNET_DISCOVERY__MDNS_ENABLED", "HEARTHNET_DISCOVERY__UDP_ENABLED"):
        lab = lab_factory(3)
        bring_up(lab, lambda i: {off: "false"})
        wait(lambda: all_see_each_other(lab), 60, f"discovery with {off}=false")
        sources = {p["source"] for n in lab.nodes for p in lab.status(n)["peers"]}
        assert sources == ({"udp"} if "MDNS" in off else {"mdns"}), sources
        lab.close()


def test_call_from_a_served_by_c_and_c_killed_mid_stream(lab_factory):
    lab = lab_factory(4)
    only_c = lambda i: {} if i == 2 else {"HEARTHNET_BUS__DISABLED": '["echo.ping", "echo.count"]'}  # noqa: E731
    bring_up(lab, only_c)
    a, c = lab.nodes[0], lab.nodes[2]
    c_id = json.loads(lab.exec(c, "id", "--json").stdout)["node_id"]

    def served_by_c():
        p = lab.exec(a, "call", "echo.ping@1.0", "--body", '{"message": "across the bridge"}', check=False)
        return p.returncode == 0 and json.loads(p.stdout)["node_id"] == c_id

    wait(served_by_c, 60, "a call from A served by C")
    import subprocess
    import sys

    cmd = ["ip", "netns", "exec", a.ns, sys.executable, "-m", "hearthnet", "--data-dir", str(a.data_dir), "call", "echo.count@1.0",
           "--body", '{"n": 200, "interval_ms": 100}', "--stream", "--timeout", "30"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    frames = []
    try:
        for line in proc.stdout:
            frames.append(json.loads(line))
            if len(frames) == 10:
                lab.kill(c)  # SIGKILL mid-stream
        err = proc.stderr.read()
        rc = proc.wait(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    elapsed = time.monotonic() - t0
    assert len(frames) >= 10 and frames[-1]["event"] == "error", frames[-3:]
    assert frames[-1]["data"]["code"] == "partition"
    assert rc != 0 and err.startswith("error[partition]")
    assert elapsed < 30


def test_partition_then_heal_converges(lab_factory):
    lab = lab_factory(5)
    bring_up(lab)
    wait(lambda: all_see_each_other(lab), 60, "full discovery")
    lab.partition([3, 4])
    write = ("from ulid import ULID\nfrom hearthnet.home import Home\nh=Home.open({d!r})\nwith h.open_log() as log:\n"
             "    [log.append_local('market.post.created', {{'post_id': str(ULID()), 'category': 'info', 'title': f'{s} {{i}}',"
             " 'expires_at': '2030-01-01T00:00:00.000Z'}}, h.identity()) for i in range(10)]\n")
    for i, side in ((0, "left"), (1, "left"), (3, "right"), (4, "right")):
        lab.python(lab.nodes[i], write.format(d=str(lab.nodes[i].data_dir), s=side))
    time.sleep(3)
    lab.heal()

    def converged():
        ids = [tuple(e["event_id"] for e in json.loads(lab.exec(n, "log", "--json").stdout)) for n in lab.nodes]
        return len(set(ids)) == 1 and len(ids[0]) == 2 + 4 + 40

    healed = time.monotonic()
    assert wait(converged, 90, "convergence after healing") - healed < 90
    titles = [e["data"].get("title", "") for e in json.loads(lab.exec(lab.nodes[2], "log", "--json").stdout)]
    # node 2 wrote nothing and sat on the left: it holds both sides' posts now
    assert sum(t.startswith("left ") for t in titles) == 20 and sum(t.startswith("right ") for t in titles) == 20
    for n in lab.nodes:
        assert lab.exec(n, "log", "--verify").returncode == 0


def test_announcements_are_visible_to_avahi_browse(lab_factory):
    """A standard tool (avahi-browse, through its own avahi-daemon in an observer
    namespace) lists the nodes with their TXT records."""
    import os
    import shutil
    import subprocess
    from pathlib import Path

    import pytest

    missing = [t for t in ("avahi-browse", "avahi-daemon", "dbus-daemon") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install avahi-daemon avahi-utils dbus)")
    lab = lab_factory(2)
    obs = lab.observer()
    bring_up(lab)
    socket_path = Path("/run/dbus/system_bus_socket")
    dbus = avahi = None
    try:
        import socket as socketlib

        def bus_alive() -> bool:
            with socketlib.socket(socketlib.AF_UNIX) as s:
                try:
                    s.connect(str(socket_path))
                    return True
                except OSError:
                    return False

        if not bus_alive():
            socket_path.unlink(missing_ok=True)  # stale file from a bus that is gone
            os.makedirs(socket_path.parent, exist_ok=True)
            dbus = subprocess.Popen(["dbus-daemon", "--system", "--nofork", "--nopidfile"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait(bus_alive, 10, "the D-Bus system bus")
        Path("/run/avahi-daemon/pid").unlink(missing_ok=True)
        avahi_log = open(lab.base / "avahi.log", "w")
        avahi = subprocess.Popen(["ip", "netns", "exec", obs, "avahi-daemon", "--no-drop-root", "--no-chroot", "--no-rlimits"],
                                 stdout=avahi_log, stderr=subprocess.STDOUT)
        ids = {json.loads(lab.exec(n, "id", "--json").stdout)["node_id"] for n in lab.nodes}

        seen = {}

        def listed():
            p = subprocess.run(["ip", "netns", "exec", obs, "avahi-browse", "-rpt", "_hearthnet._tcp"], capture_output=True, text=True, timeout=20)
            out = seen["out"] = p.stdout + p.stderr
            resolved = [line.split(";") for line in out.splitlines() if line.startswith("=;")]
            found = {f.split("=", 1)[1].strip('"') for r in resolved for f in r[9].split() if f.strip('"').startswith("id=")} if resolved else set()
            return found == ids and {r[7] for r in resolved} == {n.ip for n in lab.nodes}

        try:
            wait(listed, 30, "avahi-browse listing both nodes")
        except AssertionError:
            raise AssertionError(f"avahi-browse said: {seen.get('out')!r}; avahi-daemon: {(lab.base / 'avahi.log').read_text()[-800:]!r}") from None
    finally:
        for p in (avahi, dbus):
            if p is not None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if dbus is not None:
            socket_path.unlink(missing_ok=True)
        Path("/run/avahi-daemon/pid").unlink(missing_ok=True)
