"""Real `hearthnet run` processes on loopback, driven through the CLI."""

from __future__ import annotations

import json
import signal
import sys
import time

from eventgen import post_data
from nodeprocs import cli, community, free_port, wait_until


def test_three_processes_route_and_replicate(tmp_path, procs):
    dirs = [tmp_path / f"p{i}" for i in range(3)]
    ports = [free_port() for _ in dirs]
    community(procs, dirs, ports, "Procdorf")
    # node 1 does not offer echo.ping itself: its calls must be served by a peer
    procs.start(dirs[1], ports[1], [ports[0], ports[2]], {"HEARTHNET_BUS__DISABLED": '["echo.ping"]'})
    procs.start(dirs[2], ports[2], [ports[0], ports[1]])
    me = json.loads(cli(dirs[1], "id", "--json").stdout)["node_id"]

    def routed():
        p = cli(dirs[1], "call", "echo.ping@1.0", "--body", '{"message": "via the mesh"}', check=False)
        return p.returncode == 0 and json.loads(p.stdout)["node_id"] != me

    wait_until(routed)
    caps = json.loads(cli(dirs[1], "caps", "--json", "--name", "echo.ping").stdout)
    assert {c["local"] for c in caps} == {False} and len(caps) == 2
    stream = cli(dirs[1], "call", "echo.count@1.0", "--body", '{"n": 40}', "--stream").stdout.splitlines()
    assert len(stream) == 41 and json.loads(stream[-1])["event"] == "done"
    trace = json.loads(cli(dirs[1], "trace", "--json").stdout)
    assert any(t["capability"] == "echo.ping" and t["result"] == "ok" and not t["is_local"] for t in trace)
    status = json.loads(cli(dirs[1], "status", "--json").stdout)
    assert sum(1 for p in status["peers"] if p["verified"]) == 2
    # An event written through node 2's log reaches the others by sync.
    from hearthnet.home import Home

    h2 = Home.open(dirs[2])
    with h2.open_log() as log:
        ev = log.append_local("market.post.created", post_data(901), h2.identity())

    def everywhere():
        return all(any(e["event_id"] == ev.event_id for e in json.loads(cli(d, "log", "--json").stdout)) for d in dirs)

    wait_until(everywhere)


def test_sigterm_is_a_clean_shutdown(tmp_path, procs):
    d = tmp_path / "solo"
    cli(d, "init", "--create-community", "Solo")
    p = procs.start(d, free_port(), [])
    assert json.loads(cli(d, "status", "--json").stdout)["level"] == "anchor"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=15) == 0
    assert not (d / "run" / "node.json").exists()
    log = (d / "run.log").read_text()
    assert '"node stopped"' in log and "Traceback" not in log
    assert cli(d, "log", "--verify").returncode == 0
    p2 = cli(d, "status", check=False)
    assert p2.returncode == 3 and p2.stderr.startswith("error[no_node]")


SKEWED = [sys.executable, "-c", "import sys; import hearthnet.clock as c; c.set_offset(-3600); from hearthnet.cli import main; sys.argv[0]='hearthnet'; main()"]


def _pair_with_late_clock(tmp_path, procs, env=None):
    """Anchor a (correct clock) and member b, whose box thinks it is an hour earlier
    (a Pi without a hardware clock)."""
    a, b = tmp_path / "a", tmp_path / "b"
    pa, pb = free_port(), free_port()
    cli(a, "init", "--create-community", "Clockdorf")
    cli(b, "init")
    procs.start(a, pa, [pb])
    cli(a, "member", "add", json.loads(cli(b, "id", "--json").stdout)["node_id"])
    cli(b, "join", f"https://127.0.0.1:{pa}")
    procs.start(b, pb, [pa], env, prefix=SKEWED)
    return a, b


def test_node_with_a_wrong_clock_learns_the_mesh_time(tmp_path, procs):
    a, b = _pair_with_late_clock(tmp_path, procs)
    from hearthnet.clock import parse_iso

    def corrected():
        # Answering at all means b accepts the CLI's (correct) timestamps again.
        h = json.loads(cli(b, "status", "--json", check=False).stdout or "{}")
        return "time" in h and abs(parse_iso(h["time"]) - time.time()) < 30

    wait_until(corrected, 30)
    with_a = json.loads(cli(a, "status", "--json").stdout)

    def b_synced():
        return any(p["verified"] for p in json.loads(cli(b, "status", "--json").stdout)["peers"])

    wait_until(b_synced, 30)
    assert with_a["clock_warning"] is None
    assert '"clock corrected from peers"' in (b / "run.log").read_text()


def test_node_that_may_not_correct_its_clock_says_so(tmp_path, procs):
    a, b = _pair_with_late_clock(tmp_path, procs, {"HEARTHNET_TRANSPORT__LEARN_TIME_FROM_PEERS": "false"})

    def warned():
        doc = cli(b, "doctor", "--json", "--check", "mesh_clock", check=False)
        check = json.loads(doc.stdout)["checks"][0]
        return not check["ok"] and "peers" in check["detail"]

    wait_until(warned, 30)
    # Its signed API refuses the (correct) CLI clock, and says why in one line.
    p = cli(b, "status", check=False)
    assert p.returncode == 4 and p.stderr.startswith("error[stale_timestamp]")
