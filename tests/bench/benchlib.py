"""Shared helpers for tests/bench/bench_*.py: one JSON line per figure, same-run baselines."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a source checkout too


def args(default_n: int, quick_n: int) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=None, help=f"events (default {default_n})")
    p.add_argument("--quick", action="store_true", help=f"tiny run ({quick_n}) to prove the script works")
    a = p.parse_args()
    a.n = a.n or (quick_n if a.quick else default_n)
    return a


def _significant(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def emit(bench: str, case: str, metric: str, value: float, unit: str, baseline_name: str, baseline: float, goal: str, **extra: Any) -> None:
    # Significant figures, not decimals: a baseline of a few milliseconds rounded to 3 decimals
    # would no longer agree with the ratio printed beside it.
    value, baseline = _significant(value), _significant(baseline)
    line = {
        "bench": bench,
        "case": case,
        "metric": metric,
        "value": value,
        "unit": unit,
        "baseline_name": baseline_name,
        "baseline": baseline,
        "ratio": _significant(value / baseline) if baseline else None,
        "goal": goal,
    }
    line.update(extra)
    print(json.dumps(line), flush=True)


def best_rate(n: int, fn: Callable[[], None], repeats: int = 3) -> float:
    """Items per second of the fastest of `repeats` runs of fn (which handles n items)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def best_seconds(fn: Callable[[], object], repeats: int = 3) -> float:
    """Seconds of the fastest of `repeats` runs of fn."""
    t = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def tmpdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="hearthnet-bench-")


def community_log(path: Path, synchronous: str = "NORMAL"):
    """(log, author key) for a fresh community whose author is a member."""
    from hearthnet.events.log import EventLog
    from hearthnet.identity import keys
    from hearthnet.events.community import genesis_data

    root, author = keys.generate(), keys.generate()
    cid, data = genesis_data("Benchdorf", root.node_id)
    log = EventLog(path, cid, synchronous=synchronous)
    log.append_local("community.created", data, root)
    log.append_local("community.member.joined", {"node_id": author.node_id, "level": "member"}, root)
    return log, author


def post(i: int) -> dict[str, Any]:
    """Well-formed market.post.created data of a typical size (the log checks every event's data)."""
    from ulid import ULID

    return {"post_id": str(ULID.from_int(i + 1)), "category": "offer", "title": f"Fresh eggs #{i}",
            "body": "A dozen eggs from the hill farm, collect by Friday.", "tags": ["eggs", "food"], "expires_at": "2030-01-01T00:00:00.000Z"}


def chat(i: int, to: str) -> dict[str, Any]:
    """Well-formed chat.message.sent data of a typical size (a box the log does not open)."""
    from ulid import ULID

    return {"msg_id": str(ULID.from_int(i + 1)), "to": to, "box": "x" * 160}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_with_route(imports: str, route: str) -> list[str]:
    """argv of a `hearthnet` process whose app has one extra, unsigned route (a same-run
    baseline on the same uvicorn). `route` is the decorated handler, indented 4 spaces,
    with `node` and `app` in scope."""
    program = f"""
import sys
import hearthnet.transport.server as server
{imports}
original = server.build_app
def build_app(node):
    app = original(node)
{route}
    return app
server.build_app = build_app
from hearthnet.cli import main
sys.argv[0] = "hearthnet"
main()
"""
    return [sys.executable, "-c", program]


def start_node(data_dir: Path, port: int, env: dict[str, str], argv_prefix: list[str] | None = None) -> tuple[Any, str]:
    """Start `hearthnet run` for data_dir on 127.0.0.1:port; returns (process, url) once it is up."""
    import os
    import subprocess

    cmd = (argv_prefix or [sys.executable, "-m", "hearthnet"]) + ["--data-dir", str(data_dir), "run", "--host", "127.0.0.1", "--port", str(port)]
    # Several nodes side by side: each gateway on a free port (not the default 7860).
    proc = subprocess.Popen(cmd, env={"HEARTHNET_UI__PORT": "0", "HEARTHNET_UI__ENABLED": "false", **os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    run_file = data_dir / "run" / "node.json"
    while not run_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("node did not start")
        time.sleep(0.05)
    return proc, json.loads(run_file.read_text())["url"]
