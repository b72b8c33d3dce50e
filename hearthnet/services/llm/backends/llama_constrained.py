"""Grammar-constrained decoding that checks the grammar only when it must (in the llama.cpp worker).

llama-cpp-python puts the grammar into its sampler chain, so every token of a forced tool
call checks all of the vocabulary (49,152 entries for SmolLM2) against the grammar: on two
cores that doubled the time of a call. llama.cpp's own tools sample first and consult the
grammar only about the chosen token, filtering the whole vocabulary just when that token is
refused; inside a JSON value the model's own pick is nearly always allowed. This does the
same on llama-cpp-python's model and context: greedy at temperature 0, else a draw from the
softmax at that temperature (seeded), and the prompt's cached prefix is kept.
"""

from __future__ import annotations

import codecs
import ctypes
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np


def generate(llm: Any, tokens: list[int], grammar: Any, *, max_tokens: int, temperature: float, seed: int | None,
             stop: Callable[[], bool]) -> Iterator[tuple[str, str | None]]:
    """(text, None) per token, then ("", stop_reason): stop, length or cancelled."""
    import llama_cpp

    vocab = llm._model.vocab
    n_vocab = llm.n_vocab()
    smpl = llama_cpp.llama_sampler_init_grammar(vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8"))
    cells = (llama_cpp.llama_token_data * n_vocab)()
    view = np.ctypeslib.as_array(cells)
    one = (llama_cpp.llama_token_data * 1)()
    rng = np.random.default_rng(seed)
    text = codecs.getincrementaldecoder("utf-8")("replace")

    def apply(data: Any, size: int) -> None:
        arr = llama_cpp.llama_token_data_array(data=ctypes.cast(data, llama_cpp.llama_token_data_p), size=size, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(smpl, ctypes.byref(arr))

    def pick(logits: np.ndarray) -> int:
        if temperature <= 0:
            return int(np.argmax(logits))
        z = logits / temperature
        p = np.exp(z - z[np.isfinite(z)].max())
        return int(rng.choice(len(p), p=p / p.sum()))

    try:
        _prefill(llm, tokens)
        for _ in range(max_tokens):
            if stop():
                yield "", "cancelled"
                return
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(n_vocab,)).copy()
            tok = pick(logits)
            one[0].id, one[0].logit, one[0].p = tok, float(logits[tok]), 0.0
            apply(one, 1)
            if not np.isfinite(one[0].logit):  # refused: filter the whole vocabulary, then pick again
                view["id"] = np.arange(n_vocab, dtype=np.int32)
                view["logit"] = logits
                view["p"] = 0.0
                apply(cells, n_vocab)
                tok = pick(view["logit"].astype(np.float64))
            llama_cpp.llama_sampler_accept(smpl, tok)
            if llama_cpp.llama_vocab_is_eog(vocab, tok):
                yield text.decode(b"", final=True), "stop"
                return
            yield text.decode(llm.detokenize([tok])), None
            llm.eval([tok])
        yield text.decode(b"", final=True), "length"
    finally:
        llama_cpp.llama_sampler_free(smpl)


def _prefill(llm: Any, tokens: list[int]) -> None:
    """Evaluate the prompt, reusing what the context holds of it already (as Llama.generate does)."""
    have = llm.input_ids[: llm.n_tokens].tolist()
    n = 0
    for a, b in zip(have, tokens, strict=False):
        if a != b:
            break
        n += 1
    n = min(n, len(tokens) - 1)  # at least one token is evaluated, so its logits are fresh
    llm.n_tokens = n
    llm.eval(tokens[n:])


__all__ = ["generate"]
