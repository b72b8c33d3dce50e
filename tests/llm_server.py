"""llama-cpp-python's own OpenAI-compatible server on loopback, serving the pinned SmolLM2 file.

The real server the HTTP backends are tested against (and the gateway is benchmarked
against). Started as a child process; `stop()` kills it, also half-way through an answer.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from hearthnet.provision import models
from hearthnet.services.llm.service import EMBEDDED_MODEL

ALIAS = "smollm2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    def __init__(self, *, n_ctx: int = 2048, alias: str = ALIAS) -> None:
        entry = models.find(EMBEDDED_MODEL)
        self.path = models.verify(entry, models.locate(entry))
        self.n_ctx = n_ctx
        self.alias = alias
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> LlamaServer:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.path), "--model_alias", self.alias, "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--n_threads", str(os.cpu_count() or 1)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("llama_cpp.server did not come up")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["ALIAS", "LlamaServer", "free_port"]
