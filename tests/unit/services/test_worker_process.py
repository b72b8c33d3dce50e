"""The supervised worker process: real child processes (a small Python echo worker), killed with real signals."""

import os
import queue
import signal
import sys
import time

import pytest

from hearthnet.errors import HearthNetError
from hearthnet.services.llm.backends.worker_process import WorkerProcess

# Answers each request with one `done` line; `hang` never answers.
ECHO = r"""
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("op") == "hang":
        continue
    sys.stdout.write(json.dumps({"id": msg["id"], "ev": "done", "echo": msg.get("text"), "pid": __import__("os").getpid()}) + "\n")
    sys.stdout.flush()
"""


@pytest.fixture
def worker():
    w = WorkerProcess([sys.executable, "-c", ECHO], "echo", backoff_first=0.3, backoff_max=0.6, stable_seconds=30)
    yield w
    w.close()


def ask(w: WorkerProcess, msg: dict, timeout: float = 10) -> dict:
    answers: queue.SimpleQueue = queue.SimpleQueue()
    rid = w.request(msg, answers.put)
    try:
        return answers.get(timeout=timeout)
    finally:
        w.done(rid)


def wait_for(pred, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not pred():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_started_at_first_request_and_answers(worker):
    assert worker.status()["state"] == "not_started" and worker.pid is None
    out = ask(worker, {"op": "echo", "text": "hi"})
    assert out["echo"] == "hi" and out["pid"] == worker.pid
    assert worker.status()["state"] == "running"


def test_a_crash_reaches_the_waiting_request_then_restarts_with_doubling_backoff(worker):
    first = ask(worker, {"op": "echo", "text": "x"})["pid"]
    answers: queue.SimpleQueue = queue.SimpleQueue()
    worker.request({"op": "hang"}, answers.put)
    os.kill(first, signal.SIGSEGV)
    died = answers.get(timeout=10)
    assert died["ev"] == "died" and died["crash"]["signal"] == "SIGSEGV" and died["crash"]["pid"] == first
    assert died["crash"]["exit_code"] == -signal.SIGSEGV and died["crash"]["in_flight"] == 1
    st = worker.status()
    assert st["state"] == "restarting" and st["pid"] is None and 0 < st["restart_in_seconds"] <= 0.3
    with pytest.raises(HearthNetError) as down:  # while it waits, callers hear `unhealthy` with a retry hint
        worker.ensure()
    assert down.value.code == "unhealthy" and "SIGSEGV" in down.value.message and down.value.details["retry_after_ms"] > 0
    wait_for(lambda: worker.status()["state"] == "running")
    assert worker.restarts == 1 and worker.pid != first
    second = ask(worker, {"op": "echo", "text": "again"})
    assert second["echo"] == "again"
    # A second crash soon after: the backoff doubled (0.3 -> 0.6 s), and stays at its cap.
    os.kill(second["pid"], signal.SIGKILL)
    wait_for(lambda: worker.status()["state"] == "restarting")
    assert 0.3 < worker.status()["restart_in_seconds"] <= 0.6
    assert worker.status()["last_crash"]["signal"] == "SIGKILL"
    wait_for(lambda: worker.status()["state"] == "running")
    assert worker.restarts == 2


def test_a_plain_exit_is_a_crash_too_and_close_is_final(worker):
    pid = ask(worker, {"op": "echo"})["pid"]
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: worker.last_crash is not None)
    assert worker.last_crash.signal == "SIGTERM"
    worker.close()
    assert worker.status()["state"] == "stopped"
    with pytest.raises(HearthNetError) as closed:
        worker.ensure()
    assert closed.value.code == "unhealthy"
    time.sleep(0.5)  # the restart timer was cancelled: nothing comes back
    assert worker.pid is None


def test_close_ends_a_running_child_and_tells_waiting_requests(worker):
    answers: queue.SimpleQueue = queue.SimpleQueue()
    worker.request({"op": "hang"}, answers.put)
    pid = worker.pid
    worker.close()
    assert answers.get(timeout=5) == {"ev": "died", "crash": None}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert worker.last_crash is None  # a requested stop is no crash


def test_a_worker_that_cannot_start_is_internal_not_a_traceback():
    w = WorkerProcess(["/nonexistent/python"], "missing")
    with pytest.raises(HearthNetError) as e:
        w.ensure()
    assert e.value.code == "internal" and "cannot start" in e.value.message
    w.close()
