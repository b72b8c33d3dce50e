"""A child process the node supervises: JSON lines both ways, restarts with backoff when it dies.

Native inference runs here, not in the node: a fault in llama.cpp (an illegal instruction,
a segfault) ends this child, and the node — its event log writer, transport and discovery —
goes on. The parent writes one JSON object per line to the child's stdin; the child answers
with JSON lines on stdout, each naming the request `id` it belongs to. One reader thread
per child hands each line to the callback registered for its id, so callers on any event
loop (or none) can wait for their answers.

When the child dies without being asked to: every waiting request gets a `died` message,
the exit is logged (signal name or exit status) and kept as `last_crash`, and a new child
is started after a backoff of 1 s, doubling to 60 s while the restarts keep failing
(a child that lived `stable_seconds` starts the backoff over).
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from hearthnet import clock
from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.observability import logging as hlog

Sink = Callable[[dict[str, Any]], None]
log = hlog.get_logger("llm.worker")


@dataclass(frozen=True)
class Crash:
    pid: int
    at: str  # ISO time
    exit_code: int  # negative: killed by that signal
    signal: str | None  # "SIGSEGV", or None for a plain exit
    in_flight: int  # requests it was serving
    lived_seconds: float

    def describe(self) -> str:
        how = f"killed by {self.signal}" if self.signal else f"exited with status {self.exit_code}"
        return f"pid {self.pid} {how} at {self.at} after {self.lived_seconds:.0f}s" + (f", {self.in_flight} request(s) in flight" if self.in_flight else "")


def exit_description(code: int) -> str | None:
    if code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class WorkerProcess:
    def __init__(self, argv: list[str], name: str, *, backoff_first: float = C.LLM_WORKER_RESTART_BACKOFF_FIRST_SECONDS,
                 backoff_max: float = C.LLM_WORKER_RESTART_BACKOFF_MAX_SECONDS, stable_seconds: float = C.LLM_WORKER_STABLE_SECONDS) -> None:
        self.argv = argv
        self.name = name
        self._backoff_first, self._backoff_max, self._stable = backoff_first, backoff_max, stable_seconds
        self._backoff = backoff_first
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._sinks: dict[int, Sink] = {}
        self._ids = itertools.count(1)
        self._timer: threading.Timer | None = None
        self._restart_at: float | None = None  # monotonic time of the next start, while down
        self._closed = False
        self.restarts = 0
        self.last_crash: Crash | None = None

    # --- life cycle ------------------------------------------------------------------
    def ensure(self) -> None:
        """Start the child if none runs; `unhealthy` while waiting out a restart backoff."""
        with self._lock:
            if self._closed:
                raise HearthNetError("unhealthy", f"the {self.name} worker is shut down")
            if self._proc is not None:
                return
            if self._restart_at is not None:
                wait = max(0.0, self._restart_at - time.monotonic())
                crash = self.last_crash.describe() if self.last_crash else "it died"
                raise HearthNetError("unhealthy", f"the {self.name} worker died ({crash}); restarting in {wait:.1f}s", retry_after_ms=int(wait * 1000) + 100)
            self._spawn()

    def _spawn(self) -> None:
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, close_fds=True)
        except OSError as exc:
            raise HearthNetError("internal", f"cannot start the {self.name} worker: {exc.strerror or exc}") from None
        self._proc, self._started_at = proc, time.monotonic()
        threading.Thread(target=self._read, args=(proc,), name=f"worker-{self.name}-{proc.pid}", daemon=True).start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                log.warning("worker %s wrote a line that is not JSON", self.name, extra={"worker": self.name, "pid": proc.pid})
                continue
            with self._lock:
                sink = self._sinks.get(msg.get("id", -1))
            if sink is not None:
                sink(msg)
        code = proc.wait()
        self._exited(proc, code)

    def _exited(self, proc: subprocess.Popen[bytes], code: int) -> None:
        with self._lock:
            if self._proc is not proc:
                return
            self._proc = None
            sinks = list(self._sinks.values())
            self._sinks.clear()
            lived = time.monotonic() - self._started_at
            if self._closed:
                return
            crash = Crash(proc.pid, clock.iso(), code, exit_description(code), len(sinks), round(lived, 1))
            self.last_crash = crash
            if lived >= self._stable:
                self._backoff = self._backoff_first
            delay = self._backoff
            self._backoff = min(self._backoff * 2, self._backoff_max)
            self._restart_at = time.monotonic() + delay
            self._timer = threading.Timer(delay, self._restart)
            self._timer.daemon = True
            self._timer.start()
        log.error("worker %s died: %s; restarting in %.0fs", self.name, crash.describe(), delay,
                  extra={"worker": self.name, **asdict(crash), "restart_in_seconds": delay})
        for sink in sinks:
            sink({"ev": "died", "crash": asdict(crash)})

    def _restart(self) -> None:
        with self._lock:
            self._timer = None
            if self._closed or self._proc is not None:
                return
            self._restart_at = None
            try:
                self._spawn()
            except HearthNetError as exc:
                log.error("worker %s did not restart: %s", self.name, exc.message)
                self._restart_at = time.monotonic() + self._backoff
                self._timer = threading.Timer(self._backoff, self._restart)
                self._timer.daemon = True
                self._timer.start()
                self._backoff = min(self._backoff * 2, self._backoff_max)
                return
            self.restarts += 1
        log.warning("worker %s restarted", self.name, extra={"worker": self.name, "restarts": self.restarts})

    def close(self, timeout: float = 10.0) -> None:
        """Stop for good: the child's stdin closes (it exits), then SIGKILL if it lingers."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            proc, self._proc = self._proc, None
            sinks = list(self._sinks.values())
            self._sinks.clear()
        for sink in sinks:
            sink({"ev": "died", "crash": None})
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # --- requests ------------------------------------------------------------------------
    def request(self, msg: dict[str, Any], sink: Sink) -> int:
        """Send one request; its answers go to `sink` (from the reader thread) until `done`."""
        with self._lock:
            self.ensure()
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            rid = next(self._ids)
            self._sinks[rid] = sink
        try:
            self._write(proc, {**msg, "id": rid})
        except OSError:
            pass  # the child is dying: the reader thread delivers `died`
        return rid

    def send(self, msg: dict[str, Any]) -> None:
        """A message that expects no answer (a cancellation); dropped when no child runs."""
        with self._lock:
            proc = self._proc
        if proc is not None:
            try:
                self._write(proc, msg)
            except OSError:
                pass

    def done(self, rid: int) -> None:
        with self._lock:
            self._sinks.pop(rid, None)

    def _write(self, proc: subprocess.Popen[bytes], msg: dict[str, Any]) -> None:
        assert proc.stdin is not None
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        with self._write_lock:
            proc.stdin.write(data)
            proc.stdin.flush()

    # --- what /health and doctor show ------------------------------------------------------
    @property
    def pid(self) -> int | None:
        p = self._proc
        return p.pid if p is not None else None

    @property
    def down(self) -> bool:
        return self._restart_at is not None

    # The status of a worker that was never asked for (its process starts at the first request).
    NOT_STARTED: ClassVar[dict[str, Any]] = {"state": "not_started", "pid": None, "restarts": 0, "restart_in_seconds": None, "last_crash": None}

    def status(self) -> dict[str, Any]:
        with self._lock:
            if self._closed:
                state = "stopped"
            elif self._proc is not None:
                state = "running"
            elif self._restart_at is not None:
                state = "restarting"
            else:
                state = "not_started"  # started at the first request
            return {
                "state": state,
                "pid": self.pid,
                "restarts": self.restarts,
                "restart_in_seconds": round(max(0.0, self._restart_at - time.monotonic()), 1) if self._restart_at is not None else None,
                "last_crash": asdict(self.last_crash) if self.last_crash else None,
            }


__all__ = ["Crash", "WorkerProcess", "exit_description"]
