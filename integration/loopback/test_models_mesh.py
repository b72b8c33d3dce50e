"""`models fetch` from the anchor over the mesh: the index names the file's blob CID, the anchor publishes it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

from nodeprocs import cli

INDEX = Path(__file__).resolve().parents[2] / "profiles" / "models" / "index.json"


async def run(d: Path, *args: str, check: bool = True):
    return await asyncio.to_thread(cli, d, *args, check=check, timeout=120)


def test_a_pinned_model_comes_from_the_anchor_over_the_mesh(mesh, tmp_path):
    model = tmp_path / "tiny-test.gguf"
    model.write_bytes(os.urandom(3 * 1024 * 1024 + 77))
    index = tmp_path / "index.json"
    shutil.copy(INDEX, index)

    async def scenario(m):
        a, b = await m.create(2)
        entry = json.loads((await run(tmp_path, "models", "add", str(model), "--id", "tiny-test", "--family", "test", "--license", "MIT",
                                      "--quantisation", "Q8_0", "--context", "512", "--provenance", "random bytes for a test",
                                      "--index", str(index), "--json")).stdout)["entry"]
        cid = next(s["cid"] for s in entry["sources"] if s["kind"] == "anchor")
        lock = tmp_path / "models.lock.json"
        lock.write_text(json.dumps({"version": 1, "models": [{k: entry[k] for k in ("id", "kind", "file", "sha256", "size", "sources")}]}))
        # The anchor has the file and publishes it: its blob CID is the one the index names.
        (m.base / "n0" / "models").mkdir(parents=True)
        shutil.copy(model, m.base / "n0" / "models" / model.name)
        pub = json.loads((await run(m.base / "n0", "models", "publish", "--lock", str(lock), "--json")).stdout)
        assert pub == [{"id": "tiny-test", "cid": cid, "state": "published"}]
        await m.until(lambda: b.file_view.sources(cid) == [a.node_id])
        # Without the mesh there is no source; with it, the file arrives verified.
        p = await run(m.base / "n1", "models", "fetch", "--lock", str(lock), "--no-mesh", check=False)
        assert p.returncode != 0 and p.stderr.startswith("error[not_found]") and not (m.base / "n1" / "models" / model.name).exists()
        res = json.loads((await run(m.base / "n1", "models", "fetch", "--lock", str(lock), "--json")).stdout)
        assert res["fetched"] == {"tiny-test": f"anchor:{cid}"}
        assert (m.base / "n1" / "models" / model.name).read_bytes() == model.read_bytes()
        assert json.loads((await run(m.base / "n1", "models", "verify", "--lock", str(lock), "--json")).stdout)["ok"] == ["tiny-test"]
        again = json.loads((await run(m.base / "n1", "models", "fetch", "--lock", str(lock), "--json")).stdout)
        assert again["present"] == ["tiny-test"] and again["fetched"] == {}

    mesh.run(scenario)
