"""Signed remote calls on loopback vs a bare FastAPI echo endpoint on the same uvicorn.

The server is a real `hearthnet run` process (TLS, signatures, nonces, membership,
rate limiting) with one extra unsigned route, /bench/echo, added to its app by
this script only. 32 concurrent callers; p50/p99 latency and calls/s for both.
Rate limits are raised for the run (they are configuration; the defaults would
cap one peer at 100 calls/s per capability).

    python tests/bench/bench_rpc.py [-n 4000] [--quick]
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from benchlib import args as parse_args
from benchlib import emit, free_port, node_with_route, start_node, tmpdir

CONCURRENCY = 32
LIMITS = {"HEARTHNET_TRANSPORT__RATE_SOFT_RPS_PER_CAP": "1000000", "HEARTHNET_TRANSPORT__RATE_HARD_RPS_PER_CAP": "1000000",
          "HEARTHNET_TRANSPORT__RATE_SOFT_RPS_TOTAL": "1000000", "HEARTHNET_TRANSPORT__RATE_HARD_RPS_TOTAL": "1000000",
          "HEARTHNET_DISCOVERY__MDNS_ENABLED": "false", "HEARTHNET_DISCOVERY__UDP_ENABLED": "false"}
SERVER = node_with_route("from fastapi import Request\nfrom fastapi.responses import JSONResponse", """
    @app.post("/bench/echo")
    async def echo(request: Request):
        return JSONResponse({"result": await request.json()})
""")


async def load(n: int, one) -> tuple[float, float, float]:
    lat: list[float] = []
    per = n // CONCURRENCY

    async def worker() -> None:
        for _ in range(per):
            t0 = time.perf_counter()
            await one()
            lat.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    total = time.perf_counter() - t0
    lat.sort()
    return len(lat) / total, lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


async def run_client(home, url: str, n: int):
    import httpx

    from hearthnet.transport.client import TransportClient
    from hearthnet.transport.tls import PinStore, pinned_context

    cert = (home.data_dir / "tls" / "cert.pem").read_text()
    pins = PinStore(home.data_dir / "bench-pins.json")
    from hearthnet.transport.tls import origin

    pins.pin(origin(url), home.identity().node_id, cert)
    signed = TransportClient(home.identity(), home.community_id, pins)
    bare = httpx.AsyncClient(base_url=url, verify=pinned_context(cert), limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
    body = {"capability": "echo.ping", "version": "1.0", "body": {"message": "hi"}}
    try:
        async def signed_call():
            await signed.call_remote(url, "echo.ping", "1.0", {"message": "hi"}, timeout=30, trace_id="", session_id=None)

        async def bare_call():
            r = await bare.post("/bench/echo", json=body)
            r.raise_for_status()

        await load(CONCURRENCY * 4, signed_call)  # warm up connections
        await load(CONCURRENCY * 4, bare_call)
        s = await load(n, signed_call)
        b = await load(n, bare_call)
        return s, b
    finally:
        await signed.close()
        await bare.aclose()


def main() -> None:
    a = parse_args(default_n=4000, quick_n=128)
    from hearthnet.home import Home

    with tmpdir() as d:
        home = Home.open(Path(d) / "server")
        home.init(create_community="Benchdorf")
        proc, url = start_node(home.data_dir, free_port(), LIMITS, SERVER)
        try:
            (s_rate, s_p50, s_p99), (b_rate, b_p50, b_p99) = asyncio.run(run_client(Home.open(home.data_dir), url, a.n))
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    limits = "rate limits raised to 1e6/s for the run (defaults: 10/100 per capability, 100/1000 total)"
    emit("rpc", f"signed echo.ping, {CONCURRENCY} concurrent callers, TLS", "throughput", s_rate, "calls/s",
         "bare FastAPI echo on the same uvicorn", b_rate, ">= 0.5x the bare echo's throughput", calls=a.n, note=limits)
    emit("rpc", f"signed echo.ping, {CONCURRENCY} concurrent callers, TLS", "latency_p50", s_p50, "ms", "bare echo p50", b_p50, "informational")
    emit("rpc", f"signed echo.ping, {CONCURRENCY} concurrent callers, TLS", "latency_p99", s_p99, "ms", "bare echo p99", b_p99, "informational")


if __name__ == "__main__":
    main()
