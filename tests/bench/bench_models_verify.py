"""`models verify` throughput vs `sha256sum` on the same files (page cache warm for both).

Files: the packaged model files (SmolLM2 GGUF, MiniLM weights) when installed, plus
generated files so the set is large enough to time; --quick uses two small generated files.
verify hashes several files at once (hashlib drops the GIL), sha256sum one after another.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from benchlib import args, best_seconds, emit, tmpdir

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hearthnet.provision import lock, models  # noqa: E402
from hearthnet.storage import sha256_of  # noqa: E402

MB = 1 << 20




def main() -> None:
    a = args(256, 8)  # MiB per generated file
    with tmpdir() as t:
        d = Path(t) / "models"
        d.mkdir()
        entries = []
        for i in range(2):
            p = d / f"gen-{i}.gguf"
            with open(p, "wb") as fh:
                for k in range(a.n):
                    fh.write(hashlib.shake_256(f"{i}:{k}".encode()).digest(MB))
            entries.append({"id": f"gen-{i}", "kind": "llm", "file": p.name, "sha256": sha256_of(p), "size": p.stat().st_size,
                            "sources": [{"kind": "mirror", "path": p.name}]})
        paths = [d / e["file"] for e in entries]
        if not a.quick:
            for e in models.load_index().values():
                try:
                    p = models.locate(e)
                except Exception:
                    continue
                entries.append({"id": e.id, "kind": e.kind, "file": e.file, "sha256": e.sha256, "size": e.size, "sources": e.sources})
                paths.append(p)
        lk_path = Path(t) / "models.lock.json"
        lk_path.write_text(json.dumps({"version": 1, "models": entries}))
        lk = lock.load_lock(lk_path)
        total = sum(p.stat().st_size for p in paths) / MB
        repeats = 3
        subprocess.run(["sha256sum", *map(str, paths)], check=True, capture_output=True)  # warm the page cache
        base = total / best_seconds(lambda: subprocess.run(["sha256sum", *map(str, paths)], check=True, capture_output=True), repeats)

        def verify() -> None:
            assert lock.verify_lock(lk, d).clean

        rate = total / best_seconds(verify, repeats)
        emit("models_verify", f"{len(paths)}_files_{total:.0f}MiB", "throughput", rate, "MiB/s", "sha256sum", base, ">= 1x sha256sum")
        cli = [sys.executable, "-m", "hearthnet", "--data-dir", str(Path(t) / "node"), "models", "verify", "--lock", str(lk_path), "--json"]
        import os

        env = {**os.environ, "HEARTHNET_MODELS__DIR": str(d)}
        rate_cli = total / best_seconds(lambda: subprocess.run(cli, check=True, capture_output=True, env=env), repeats)
        emit("models_verify", f"{len(paths)}_files_{total:.0f}MiB_cli", "throughput", rate_cli, "MiB/s", "sha256sum", base,
             ">= 1x sha256sum", note="includes the CLI's start-up")


if __name__ == "__main__":
    main()
