"""Time to bring a fresh node up to date with N events (default 10,000) over the mesh,
and how long a revocation takes to reach every node of five.

A real `hearthnet run` process holds the log; a fresh node joins it (manifest,
pinned TLS, signed heads/batches, every event verified on entry). The baseline
is the same envelopes appended locally into a fresh log (the verification and
storage floor, no network).

Revocation: five `hearthnet run` processes on default timings; the anchor revokes
node 5; the figure is the seconds until every other node refuses node 5's signed
calls, against the configured sync interval (the time a change waits for the next
round at most).

    python tests/bench/bench_sync.py [-n 10000] [--quick]
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from benchlib import args as parse_args
from benchlib import emit, free_port, post, start_node, tmpdir

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
    worst, per_node, interval = revocation_latency()
    emit("sync", "revocation reaches all of 5 nodes (default timings, TLS)", "revocation_latency", worst, "s",
         "configured sync interval", interval, "informational: a round or two", per_node_s=per_node)


def revocation_latency(n: int = 5) -> tuple[float, list[float], float]:
    import json

    from hearthnet.community.membership import add_member, join
    from hearthnet.errors import HearthNetError
    from hearthnet.home import Home
    from hearthnet.transport.client import TransportClient
    from hearthnet.transport.tls import PinStore, pin_first_contact

    with tmpdir() as d:
        homes = [Home.open(Path(d) / f"n{i}") for i in range(n)]
        homes[0].init(create_community="Revokedorf")
        for h in homes[1:]:
            h.init()
            add_member(homes[0], h.identity().node_id)
        ports = [free_port() for _ in range(n)]
        urls = [f"https://127.0.0.1:{p}" for p in ports]
        procs = []

        def start(i: int) -> None:
            env = {**ENV, "HEARTHNET_DISCOVERY__STATIC_PEERS": json.dumps([u for j, u in enumerate(urls) if j != i])}
            procs.append(start_node(homes[i].data_dir, ports[i], env)[0])

        async def measure() -> tuple[float, list[float]]:
            victim, anchor = Home.open(homes[-1].data_dir), Home.open(homes[0].data_dir)
            vc = TransportClient(victim.identity(), victim.community_id, PinStore(Path(d) / "victim-pins.json"))
            ac = TransportClient(anchor.identity(), anchor.community_id, PinStore(Path(d) / "anchor-pins.json"))
            try:
                for u in urls:
                    await pin_first_contact(vc, u)
                await pin_first_contact(ac, urls[0])

                async def answer(u: str) -> str:
                    """ok, or the code a node refuses the victim's call with."""
                    try:
                        await vc.call_remote(u, "echo.ping", "1.0", {}, timeout=5, trace_id="", session_id=None)
                        return "ok"
                    except HearthNetError as exc:
                        if exc.code in ("revoked", "not_member"):
                            return exc.code
                        raise

                async def refused(u: str) -> bool:
                    return await answer(u) == "revoked"

                deadline = time.monotonic() + 60
                while [await answer(u) for u in urls[:-1]] != ["ok"] * (n - 1):  # every node knows the victim as a member
                    if time.monotonic() > deadline:
                        raise SystemExit("the victim never became a member everywhere")
                    await asyncio.sleep(0.2)
                t0 = time.monotonic()
                await ac.call_remote(urls[0], "community.revoke", "1.0", {"node_id": victim.identity().node_id}, timeout=10, trace_id="",
                                     session_id=None)
                done: dict[str, float] = {}
                while len(done) < n - 1 and time.monotonic() - t0 < 120:
                    for u in urls[:-1]:
                        if u not in done and await refused(u):
                            done[u] = time.monotonic() - t0
                    await asyncio.sleep(0.05)
                if len(done) < n - 1:
                    raise SystemExit("revocation did not reach every node in 120 s")
                return max(done.values()), sorted(round(v, 3) for v in done.values())
            finally:
                await vc.close()
                await ac.close()

        try:
            start(0)
            for h in homes[1:]:
                asyncio.run(join(h, urls[0]))
            for i in range(1, n):
                start(i)
            worst, per_node = asyncio.run(measure())
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=15)
        return worst, per_node, Home.open(homes[0].data_dir).config.events.sync_interval_seconds


if __name__ == "__main__":
    main()
