"""embed.text@1.0: texts in, vectors out, one capability per embedding model.

Callers that need vectors comparable with stored ones (RAG) name the model in
params, so the bus never mixes two models' vector spaces.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path
from typing import Any

from hearthnet import constants as C
from hearthnet.bus.capability import CallContext, CapabilityDescriptor
from hearthnet.config import EmbeddingConfig
from hearthnet.errors import HearthNetError
from hearthnet.bus.capability import Capabilities
from hearthnet.services.embedding.sentence_transformers import EmbedModel, SentenceTransformerEmbedder

REQUEST = {
    "type": "object",
    "properties": {
        "texts": {"type": "array", "minItems": 1, "maxItems": C.EMBED_MAX_TEXTS,
                  "items": {"type": "string", "minLength": 1, "maxLength": C.EMBED_MAX_TEXT_CHARS}},
        "normalize": {"type": "boolean"},
        "model": {"type": "string", "minLength": 1},
    },
    "required": ["texts"],
    "additionalProperties": False,
}
RESPONSE = {
    "type": "object",
    "properties": {
        "model": {"type": "string"}, "dimensions": {"type": "integer"},
        "vectors": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        "ms": {"type": "integer"},
    },
    "required": ["model", "dimensions", "vectors"],
}


class EmbeddingService:
    name = "embedding"

    def __init__(self, embedder: SentenceTransformerEmbedder, timeout_seconds: float = C.EMBED_TIMEOUT_SECONDS) -> None:
        self.embedder = embedder
        self.timeout_seconds = timeout_seconds

    def capabilities(self) -> Capabilities:
        m = self.embedder.model
        d = CapabilityDescriptor(
            name="embed.text", version=(1, 0), request_schema=REQUEST, response_schema=RESPONSE,
            params={"model": m.name, "dimensions": m.dimensions, "max_tokens": m.max_tokens, "backend": self.embedder.name},
            max_concurrent=2, timeout_seconds=self.timeout_seconds, idempotent=True,
        )
        return [(d, self._embed, None)]

    async def _embed(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        m = self.embedder.model
        if body.get("model") and body["model"] != m.name:
            raise HearthNetError("not_found", f"this node embeds with {m.name}, not {body['model']}")
        t0 = time.perf_counter()
        vectors = await asyncio.to_thread(self.embedder.encode, body["texts"], body.get("normalize", True))
        return {"model": m.name, "dimensions": m.dimensions, "vectors": vectors, "ms": int((time.perf_counter() - t0) * 1000)}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.embedder.close()


def embedder_from_index(cfg: EmbeddingConfig, model_dirs: list[Path] | None = None, index: Path | None = None) -> SentenceTransformerEmbedder | None:
    """The configured model from the model index, or None when the `embed` extra or its files are missing."""
    from hearthnet.provision import models

    if importlib.util.find_spec("sentence_transformers") is None:
        return None
    entry = models.find(cfg.model, index)
    if entry.kind != "embedding":
        raise HearthNetError("config_invalid", f"embedding.model: {cfg.model} is a {entry.kind} model, not an embedding model")
    try:
        path = models.locate(entry, model_dirs)
    except HearthNetError:
        return None
    dims = int(entry.raw.get("dimensions", 0))
    return SentenceTransformerEmbedder(EmbedModel(entry.id, dims, entry.context), lambda: models.verify(entry, path),
                                       device=cfg.device, batch_size=cfg.batch_size)


__all__ = ["REQUEST", "EmbeddingService", "embedder_from_index"]
