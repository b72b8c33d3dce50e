"""Time to bring a fresh node up to date with N events (default 10,000) over the mesh.

A real `hearthnet run` process holds the log; a fresh node joins it (manifest,
pinned TLS, signed heads/batches, every event verified on entry). The baseline
is the same envelopes appended locally into a fresh log (the verification and
storage floor, no network).

    python tests/bench/bench_sync.py [-n 10000] [--quick]
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from benchlib import args as parse_args
from benchlib import emit, post, start_node, tmpdir
from bench_rpc import free_port

ENV = {"HEARTHNET_DISCOVERY__MDNS_ENABLED": "false", "HEARTHNET_DISCOVERY__UDP_ENABLED": "false",
       "HEARTHNET_TRANSPORT__RATE_HARD_RPS_TOTAL": "100000", "HEARTHNET_TRANSPORT__RATE_HARD_RPS_PER_CAP": "100000"}


def main() -> None:
    a = parse_args(default_n=10000, quick_n=300)
    from hearthnet.community.membership import add_member, join
    from hearthnet.events.log import EventLog
    from hearthnet.home import Home

    with tmpdir() as d:
        src = Home.open(Path(d) / "anchor")
        src.init(create_community="Syncdorf")
        fresh = Home.open(Path(d) / "fresh")
        fresh.init()
        add_member(src, fresh.identity().node_id)
        with src.open_log() as log:
            kp = src.identity()
            for i in range(a.n):
                log.append_local("market.post.created", post(i), kp)
            envelopes = [e.envelope() for e in log.replay()]
        proc, url = start_node(src.data_dir, free_port(), ENV)
        try:
            t0 = time.perf_counter()
            res = asyncio.run(join(fresh, url))
            mesh_s = time.perf_counter() - t0
            assert res.events == len(envelopes), (res.events, len(envelopes))
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        with EventLog(Path(d) / "local" / "events.db", src.community_id) as log:
            t0 = time.perf_counter()
            out = log.append_received_many(envelopes)
            local_s = time.perf_counter() - t0
            assert out["added"] == len(envelopes)
    # Seconds: lower is better, so the ratio is value/baseline (> 1 = slower than the local floor).
    emit("sync", f"fresh node joins and syncs {len(envelopes)} events over TLS", "time_to_sync", mesh_s, "s",
         "local append_received_many of the same envelopes", local_s, "< 5 s for 10,000 events", events=len(envelopes))


if __name__ == "__main__":
    main()
