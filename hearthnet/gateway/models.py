"""`GET /v1/models`: every model the node can route to, with what it does well.

Beside OpenAI's fields each entry says `hearthnet.kind` (chat or embedding) and, for a
chat model, `hearthnet.tools`: auto (it decides to call tools well on its own), forced
(its calls are well-formed when the request forces one) or none — the best any node
serving it offers (the model index's flag).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hearthnet.bus import CapabilityBus
from hearthnet.gateway.admit import Gate

_TOOLS_RANK = {"none": 0, "forced": 1, "auto": 2}


def listing(bus: CapabilityBus) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for e in bus.registry.all():
        model = e.params.get("model")
        if e.name not in ("llm.chat", "embed.text") or not model:
            continue
        info = seen.setdefault(model, {"kind": "chat" if e.name == "llm.chat" else "embedding"})
        if e.name == "llm.chat":
            flag = e.params.get("tools", "none") if e.version >= (1, 1) else "none"  # llm.chat@1.0 takes no tools
            if _TOOLS_RANK.get(flag, 0) >= _TOOLS_RANK.get(info.get("tools", "none"), 0):
                info["tools"] = flag
    return [{"id": m, "object": "model", "created": 0, "owned_by": "hearthnet", "hearthnet": info} for m, info in sorted(seen.items())]


def router(gate: Gate) -> APIRouter:
    r = APIRouter()

    @r.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        await gate.admit(request)
        return JSONResponse({"object": "list", "data": listing(gate.node.bus)})

    return r


__all__ = ["listing", "router"]
