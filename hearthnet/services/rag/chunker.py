"""Documents into chunks the embedder reads whole.

A chunk is at most the embedding model's input length (MiniLM: 256 word pieces, 254
after [CLS] and [SEP]); longer chunks would be cut off by the embedder and their
tail never found. Windows overlap by RAG_CHUNK_OVERLAP_FRACTION and end, when they
can, at a sentence end in their last third.

Token boundaries come from the embedder's own tokenizer (`tokenizer.json` beside the
model's weights, read with the `tokenizers` library) when this node has the model
files; a node without them (a spark embedding through the mesh) counts words and
punctuation and keeps to 60 % of the budget, since a word is one or more word pieces.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearthnet import constants as C
from hearthnet.errors import HearthNetError

Spans = Callable[[str], list[tuple[int, int]]]  # text -> (start, end) of every token
_WORD = re.compile(r"\w+|[^\w\s]")
_APPROX_SHARE = 0.6


@dataclass(frozen=True)
class Chunk:
    text: str
    tokens: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Splitter:
    spans: Spans
    max_tokens: int  # tokens of one chunk
    exact: bool

    @property
    def overlap(self) -> int:
        return int(self.max_tokens * C.RAG_CHUNK_OVERLAP_FRACTION)


def splitter_for(embed_max_tokens: int, tokenizer_file: Path | None = None) -> Splitter:
    budget = min(C.RAG_CHUNK_TOKENS, embed_max_tokens - 2)  # the embedder adds [CLS] and [SEP]
    if tokenizer_file is not None and tokenizer_file.is_file():
        try:
            from tokenizers import Tokenizer
        except ImportError:
            pass
        else:
            tok = Tokenizer.from_file(str(tokenizer_file))
            tok.no_truncation()  # the file may carry the model's padding and truncation settings: spans must be the text's own
            tok.no_padding()
            return Splitter(lambda text: list(tok.encode(text, add_special_tokens=False).offsets), budget, True)
    return Splitter(lambda text: [m.span() for m in _WORD.finditer(text)], int(budget * _APPROX_SHARE), False)


def chunk_text(text: str, splitter: Splitter, metadata: dict[str, Any] | None = None) -> list[Chunk]:
    spans = splitter.spans(text)
    n, size = len(spans), splitter.max_tokens
    out: list[Chunk] = []
    i = 0
    while i < n:
        end = min(i + size, n)
        if end < n:  # prefer to end at a sentence: look back over the window's last third
            for j in range(end - 1, i + (2 * size) // 3, -1):
                s, e = spans[j]
                if text[e - 1] in ".!?\n" or text[e:e + 1] == "\n":
                    end = j + 1
                    break
        piece = text[spans[i][0]:spans[end - 1][1]].strip()
        if piece:
            out.append(Chunk(piece, end - i, dict(metadata or {})))
        if end >= n:
            break
        i = max(end - splitter.overlap, i + 1)
    return out


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


def chunk_markdown(text: str, splitter: Splitter, metadata: dict[str, Any] | None = None) -> list[Chunk]:
    """Chunks per section, each carrying its heading (`section`), so a hit says where it is."""
    cuts = [(m.start(), m.group(2)) for m in _HEADING.finditer(text)]
    if not cuts or cuts[0][0] > 0:
        cuts.insert(0, (0, None))
    out: list[Chunk] = []
    for k, (start, heading) in enumerate(cuts):
        end = cuts[k + 1][0] if k + 1 < len(cuts) else len(text)
        meta = dict(metadata or {})
        if heading:
            meta["section"] = heading
        out += chunk_text(text[start:end], splitter, meta)
    return out


def chunk_pdf(data: bytes, splitter: Splitter, metadata: dict[str, Any] | None = None) -> list[Chunk]:
    """Chunks per page (`page`, from 1). A file pypdf cannot read is bad_request."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise HearthNetError("bad_request", "the PDF is encrypted; decrypt it before ingesting")
        pages = [p.extract_text() or "" for p in reader.pages]
    except HearthNetError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise HearthNetError("bad_request", f"not a readable PDF: {type(exc).__name__}: {str(exc)[:120]}") from None
    out: list[Chunk] = []
    for n, page in enumerate(pages, 1):
        out += chunk_text(page, splitter, {**(metadata or {}), "page": n})
    if not out:
        raise HearthNetError("bad_request", "the PDF has no extractable text (scanned pages need OCR first)")
    return out


def kind_of(data: bytes, filename: str | None) -> str:
    """pdf | markdown | text, from the bytes first and the name second."""
    if data[:5] == b"%PDF-":
        return "pdf"
    name = (filename or "").lower()
    if name.endswith(".pdf"):
        return "pdf"  # named PDF but not one: chunk_pdf says so
    if name.endswith((".md", ".markdown")):
        return "markdown"
    return "text"


def chunk_document(data: bytes, splitter: Splitter, *, filename: str | None = None, metadata: dict[str, Any] | None = None) -> list[Chunk]:
    kind = kind_of(data, filename)
    if kind == "pdf":
        return chunk_pdf(data, splitter, metadata)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise HearthNetError("bad_request", f"{filename or 'document'} is neither a PDF nor UTF-8 text") from None
    if "\x00" in text:
        raise HearthNetError("bad_request", f"{filename or 'document'} looks binary (NUL bytes); ingest PDF, Markdown or plain text")
    chunks = chunk_markdown(text, splitter, metadata) if kind == "markdown" else chunk_text(text, splitter, metadata)
    if not chunks:
        raise HearthNetError("bad_request", f"{filename or 'document'} has no text")
    return chunks


__all__ = ["Chunk", "Splitter", "chunk_document", "chunk_markdown", "chunk_pdf", "chunk_text", "kind_of", "splitter_for"]
