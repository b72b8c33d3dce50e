"""Local bus call overhead vs calling the handler directly (same handler, same body).

    python tests/bench/bench_bus_local.py [-n 20000] [--quick]
"""

from __future__ import annotations

import asyncio
import time

from benchlib import args as parse_args
from benchlib import emit


async def measure(n: int) -> tuple[float, float, float, float]:
    from hearthnet.bus import CapabilityBus
    from hearthnet.bus.capability import CallContext
    from hearthnet.config import BusConfig
    from hearthnet.services.diag import DiagService

    me = "ed25519:bench"
    bus = CapabilityBus(me, BusConfig(), trace_size=1000)
    svc = DiagService(me)
    bus.register_service(svc)
    body = {"message": "hello"}
    best_bus = best_direct = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            await bus.call("echo.ping", (1, 0), body)
        best_bus = min(best_bus, time.perf_counter() - t0)
        ctx = CallContext(me, "t", time.monotonic() + 60)
        t0 = time.perf_counter()
        for _ in range(n):
            await svc.ping(body, ctx)
        best_direct = min(best_direct, time.perf_counter() - t0)
    return n / best_bus, n / best_direct, best_bus / n * 1e6, best_direct / n * 1e6


def main() -> None:
    a = parse_args(default_n=20000, quick_n=500)
    bus_rate, direct_rate, bus_us, direct_us = asyncio.run(measure(a.n))
    emit("bus_local", "echo.ping through CapabilityBus.call (local)", "throughput", bus_rate, "calls/s",
         "the same handler awaited directly", direct_rate, "informational: overhead per call", calls=a.n,
         overhead_us=round(bus_us - direct_us, 2))


if __name__ == "__main__":
    main()
