"""`POST /v1/embeddings`: embed.text, as floats or base64 (little-endian float32)."""

from __future__ import annotations

import base64
import struct
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hearthnet.errors import HearthNetError
from hearthnet.gateway.admit import Gate


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    input: str | list[str]
    encoding_format: str = "float"


def router(gate: Gate) -> APIRouter:
    r = APIRouter()

    @r.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        req = await gate.read(request, EmbeddingRequest)
        texts = [req.input] if isinstance(req.input, str) else req.input
        if req.encoding_format not in ("float", "base64"):
            raise HearthNetError("bad_request", "encoding_format: float or base64")
        out = await gate.node.bus.call("embed.text", (1, 0), {"texts": texts, "model": req.model}, params={"model": req.model})

        def enc(v: list[float]) -> Any:
            return base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() if req.encoding_format == "base64" else v

        data = [{"object": "embedding", "index": i, "embedding": enc(v)} for i, v in enumerate(out["vectors"])]
        return JSONResponse({"object": "list", "data": data, "model": out["model"], "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    return r


__all__ = ["EmbeddingRequest", "router"]
