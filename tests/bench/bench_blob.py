"""Blob transfer between two nodes on loopback vs a plain HTTPS download of the same bytes from the same uvicorn.

Two real `hearthnet run` processes (TLS, signed chunk requests, nonces, membership):
node B fetches a blob that node A holds (`file.fetch`, sources [A], every chunk
verified and written to B's store). The baseline is one plain GET of the same
file from an extra unsigned route that this script alone adds to A's app,
streamed to a file on disk by this process. Best of three, a fresh blob each time.
Second figure: chunking + hashing a blob (chunk_blob) vs one raw blake3 over the same bytes.

    python tests/bench/bench_blob.py [-n MiB] [--quick]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from benchlib import args as parse_args
from benchlib import emit, free_port, node_with_route, start_node, tmpdir

REPEATS = 3
SERVER = node_with_route("from fastapi.responses import FileResponse", """
    @app.get("/bench/file/{i}")
    async def plain(i: int):
        return FileResponse(node.config.data_dir / "bench" / f"{i}.bin", media_type="application/octet-stream")
""")
ENV = {"HEARTHNET_DISCOVERY__MDNS_ENABLED": "false", "HEARTHNET_DISCOVERY__UDP_ENABLED": "false",
       "HEARTHNET_DISCOVERY__MANIFEST_REFRESH_SECONDS": "60"}  # B verifies A at start; no refreshes during the measurement


def hearthnet(d: Path, *argv: str) -> str:
    import subprocess

    return subprocess.run([sys.executable, "-m", "hearthnet", "--data-dir", str(d), *argv], check=True, capture_output=True, text=True).stdout


async def measure(a_home, b_home, a_url: str, b_url: str, cids: list[str], out_dir: Path) -> tuple[float, float, int]:
    import httpx

    from hearthnet.transport.client import TransportClient
    from hearthnet.transport.tls import PinStore, origin, pinned_context

    cert = (a_home.data_dir / "tls" / "cert.pem").read_text()
    pins = PinStore(b_home.data_dir / "pins.json")
    b_cert = (b_home.data_dir / "tls" / "cert.pem").read_text()
    pins.pin(origin(b_url), b_home.identity().node_id, b_cert)
    me = TransportClient(b_home.identity(), b_home.community_id, pins)  # B's own key: file.fetch is self-only
    plain = httpx.AsyncClient(base_url=a_url, verify=pinned_context(cert))
    a_id = a_home.identity().node_id
    try:
        for _ in range(200):  # B must know A as a verified peer
            st = await me.get(b_url, "/status")
            if any(p.get("node_id") == a_id and p.get("verified") for p in st["peers"]):
                break
            await asyncio.sleep(0.1)
        fetch_best = plain_best = float("inf")
        size = 0
        for i, cid in enumerate(cids):
            t0 = time.perf_counter()
            report = None
            async for frame in me.stream_remote(b_url, "file.fetch", "1.0", {"cid": cid, "sources": [a_id]}, timeout=600, trace_id="", session_id=None):
                if frame["event"] == "error":
                    raise SystemExit(f"fetch failed: {frame['data']}")
                if frame["event"] == "done":
                    report = frame["data"]
            fetch_best = min(fetch_best, time.perf_counter() - t0)
            assert report is not None and report["fetched"] == report["chunks"], report
            size = report["size_bytes"]
            t0 = time.perf_counter()
            with (out_dir / f"{i}.bin").open("wb") as fh:
                async with plain.stream("GET", f"/bench/file/{i}") as resp:
                    resp.raise_for_status()
                    async for block in resp.aiter_bytes():
                        fh.write(block)
                fh.flush()
                os.fsync(fh.fileno())
            plain_best = min(plain_best, time.perf_counter() - t0)
        return size / fetch_best / 2**20, size / plain_best / 2**20, size
    finally:
        await me.close()
        await plain.aclose()


def hashing(size: int) -> tuple[float, float]:
    import blake3

    from hearthnet.blobs.chunker import chunk_blob

    data = os.urandom(size)
    best_chunk = best_raw = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        chunk_blob(data)
        best_chunk = min(best_chunk, time.perf_counter() - t0)
        t0 = time.perf_counter()
        blake3.blake3(data).hexdigest()
        best_raw = min(best_raw, time.perf_counter() - t0)
    return size / best_chunk / 2**20, size / best_raw / 2**20


def main() -> None:
    a = parse_args(default_n=64, quick_n=4)  # MiB per blob
    from hearthnet.blobs.store import BlobStore
    from hearthnet.home import Home

    size = a.n * 2**20
    with tmpdir() as d:
        base = Path(d)
        ha, hb = Home.open(base / "a"), Home.open(base / "b")
        ha.init(create_community="Benchdorf")
        hb.init()
        store = BlobStore(ha.config.path(ha.config.file.blobs_dir))
        (ha.data_dir / "bench").mkdir()
        cids = []
        for i in range(REPEATS):
            data = os.urandom(size)
            cids.append(store.put(data).cid)
            (ha.data_dir / "bench" / f"{i}.bin").write_bytes(data)
        store.close()
        pa, pb = free_port(), free_port()
        procs = []
        try:
            proc_a, a_url = start_node(ha.data_dir, pa, ENV, SERVER)
            procs.append(proc_a)
            hearthnet(ha.data_dir, "member", "add", json.loads(hearthnet(hb.data_dir, "id", "--json"))["node_id"])
            hearthnet(hb.data_dir, "join", a_url)
            proc_b, b_url = start_node(hb.data_dir, pb, {**ENV, "HEARTHNET_DISCOVERY__STATIC_PEERS": json.dumps([a_url])})
            procs.append(proc_b)
            (base / "plain").mkdir()
            fetch_rate, plain_rate, got = asyncio.run(measure(Home.open(ha.data_dir), Home.open(hb.data_dir), a_url, b_url, cids, base / "plain"))
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=15)
    emit("blob", f"{got // 2**20} MiB blob, node B fetches from node A (file.fetch), TLS, loopback", "throughput", fetch_rate, "MiB/s",
         "plain HTTPS GET of the same file from the same uvicorn, written to disk", plain_rate, ">= 0.7x the plain download")
    chunk_rate, raw_rate = hashing(size)
    emit("blob", f"chunk_blob over {a.n} MiB (256 KiB chunks, manifest)", "hash_rate", chunk_rate, "MiB/s",
         "one raw blake3 over the same bytes", raw_rate, "informational")


if __name__ == "__main__":
    main()
