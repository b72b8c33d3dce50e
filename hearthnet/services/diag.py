"""Built-in diagnostic capabilities: `echo.ping@1.0` and the streaming `echo.count@1.0`.

They exist so a node with no models still offers something to route to, and so
`hearthnet call`, doctor and the tests can exercise the whole path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from hearthnet import clock
from hearthnet.bus.capability import CallContext, CapabilityDescriptor
from hearthnet.bus.capability import Capabilities

PING = CapabilityDescriptor(
    name="echo.ping",
    version=(1, 0),
    request_schema={
        "type": "object",
        "properties": {"message": {"type": "string", "maxLength": 4096}, "delay_ms": {"type": "integer", "minimum": 0, "maximum": 60000}},
        "additionalProperties": False,
    },
    response_schema={
        "type": "object",
        "properties": {"message": {"type": "string"}, "node_id": {"type": "string"}, "at": {"type": "string"}},
        "required": ["message", "node_id", "at"],
    },
    max_concurrent=64,
    timeout_seconds=60,
    idempotent=True,
)

COUNT = CapabilityDescriptor(
    name="echo.count",
    version=(1, 0),
    request_schema={
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 100000}, "interval_ms": {"type": "integer", "minimum": 0, "maximum": 10000}},
        "required": ["n"],
        "additionalProperties": False,
    },
    stream_schema={
        "type": "object",
        "properties": {"event": {"enum": ["chunk", "done"]}, "data": {"type": "object"}},
        "required": ["event", "data"],
    },
    max_concurrent=16,
    timeout_seconds=120,
)


class DiagService:
    name = "diag"

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id

    async def ping(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        if body.get("delay_ms"):
            await asyncio.sleep(body["delay_ms"] / 1000)
        return {"message": body.get("message", "pong"), "node_id": self.node_id, "at": clock.iso()}

    async def count(self, body: dict[str, Any], ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        interval = body.get("interval_ms", 0) / 1000
        for i in range(body["n"]):
            if interval:
                await asyncio.sleep(interval)
            yield {"event": "chunk", "data": {"i": i, "node_id": self.node_id}}
        yield {"event": "done", "data": {"n": body["n"], "node_id": self.node_id}}

    def capabilities(self) -> Capabilities:
        return [(PING, self.ping, None), (COUNT, self.count, None)]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


__all__ = ["COUNT", "PING", "DiagService"]
