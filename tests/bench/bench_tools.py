"""A forced tool call against the same request without tools: what the tool contract costs.

Both go through llm.chat on a CapabilityBus in this process, on the embedded SmolLM2 (one
llama.cpp worker), greedy. The tool call names its function (`tool_choice`), so the model
writes `{"name": ..., "arguments": {...}}` under the grammar made from the tool's schema;
the baseline is the same message with no tools and `max_tokens` set to the number of tokens
the call took, so both generate as many tokens (the prose fills its budget). The figure is
the median wall time of a request, after a warm-up of each (the grammar is built once and
kept by the worker); the runs alternate, so a busy neighbour slows both alike.

    python tests/bench/bench_tools.py [-n 7] [--quick]
"""

from __future__ import annotations

import asyncio
import statistics
import time

from benchlib import args as parse_args
from benchlib import emit

ORDER = {"type": "function", "function": {"name": "order_seeds", "description": "Order seed packets for the village garden", "parameters": {
    "type": "object", "additionalProperties": False, "required": ["crop", "packets", "house"],
    "properties": {"crop": {"enum": ["potato", "bean", "kale"]}, "packets": {"type": "integer", "minimum": 1, "maximum": 9},
                   "house": {"type": "integer", "minimum": 1, "maximum": 99}, "note": {"type": "string", "maxLength": 40}}}}}
ASK = [{"role": "user", "content": "Order three packets of kale seeds for house 12, and tell me at length why kale grows well here."}]


async def main(n: int) -> None:
    from hearthnet.bus import CapabilityBus
    from hearthnet.config import BusConfig
    from hearthnet.services.llm.service import LlmService, embedded_backend

    svc = LlmService([embedded_backend()])
    bus = CapabilityBus("ed25519:bench", BusConfig())
    bus.register_service(svc)
    forced = {"messages": ASK, "tools": [ORDER], "tool_choice": {"type": "function", "function": {"name": "order_seeds"}}, "temperature": 0,
              "max_tokens": 96}

    async def timed(body: dict) -> tuple[float, dict]:
        t0 = time.perf_counter()
        out = await bus.call("llm.chat", (1, 1), body, timeout=120)
        return time.perf_counter() - t0, out

    try:
        _, call = await timed(forced)  # warm-up: loads the model, builds the grammar
        assert call["stop_reason"] == "tool_calls", call
        plain = {"messages": ASK, "temperature": 0, "max_tokens": call["tokens_out"]}
        _, prose = await timed(plain)
        tool_s, plain_s = [], []
        for _ in range(n):
            tool_s.append((await timed(forced))[0])
            plain_s.append((await timed(plain))[0])
    finally:
        await svc.stop()
    emit("tools", "forced named call vs the same request without tools", "latency", statistics.median(tool_s) * 1000, "ms",
         "same messages, no tools, as many tokens", statistics.median(plain_s) * 1000, "<= 1.3x",
         tokens_call=call["tokens_out"], tokens_plain=prose["tokens_out"], prompt_tokens_call=call["tokens_in"], prompt_tokens_plain=prose["tokens_in"])


if __name__ == "__main__":
    a = parse_args(7, 1)
    asyncio.run(main(a.n))
