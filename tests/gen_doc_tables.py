"""Rewrite the generated tables in docs/ from the code: python tests/gen_doc_tables.py

docs/contract.md holds the error table between <!-- errors:begin/end --> and
docs/configuration.md the key tables between <!-- config:begin/end -->;
tests/unit/test_docs.py fails when they differ from what this prints.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hearthnet import config  # noqa: E402
from hearthnet.errors import ERRORS  # noqa: E402

EFFECT = {
    "identity": "now (init, id, signing; `profile` is announced in the node manifest)",
    "community": "now (init, join, log, doctor)",
    "events": "now",
    "transport": "now (`hearthnet run`)",
    "discovery": "now (`static_peers`, `manifest_refresh_seconds`); mDNS and UDP with the discovery work of the mesh issue",
    "bus": "now (`hearthnet run`, routing and quarantine)",
    "llm": "now (`hearthnet run`); empty `backends` means the embedded SmolLM2 through llama.cpp when the `llm` extra is installed",
    "embedding": "now (`hearthnet run` serves `embed.text` when the `embed` extra is installed; the model is a model-index id)",
    "rag": "now (`hearthnet run`, `hearthnet rag`)",
    "file": "now for `blobs_dir` (documents ingested into RAG corpora are stored there); the rest with the community-services issue",
    "market": "with the community-services issue",
    "chat": "with the community-services issue",
    "emergency": "with the community-services issue",
    "ui": "now for the OpenAI-compatible gateway (`hearthnet run`); the web UI with its issue",
    "observability": "now (`hearthnet run`: JSON logs, /metrics, /trace/recent)",
}


def errors_table() -> str:
    rows = ["| code | HTTP | exit | meaning |", "|---|---|---|---|"]
    rows += [f"| `{c}` | {s.http_status} | {s.exit_code} | {s.meaning} |" for c, s in ERRORS.items()]
    return "\n".join(rows)


def _type(f) -> str:
    return str(f.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "").replace("pathlib.", "").replace("hearthnet.config.", "")


def _rows(model) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        if f.default_factory is not None:
            d = repr(f.default_factory())
        elif f.is_required():
            d = "required"
        else:
            d = "none" if f.default is None else (repr(f.default) if isinstance(f.default, str) else str(f.default))
        rows.append(f"| `{name}` | `{_type(f)}` | `{d}` | {f.description or ''} |")
    return rows


def config_tables() -> str:
    out = []
    for sec, model in config.SECTIONS.items():
        out += [f"### `[{sec}]`", "", f"In effect: {EFFECT[sec]}.", "", *_rows(model), ""]
        for name, f in model.model_fields.items():
            inner = getattr(f.annotation, "__args__", (None,))[0]
            if isinstance(inner, type) and issubclass(inner, config.BaseModel):  # a list of tables: [[section.key]]
                out += [f"Each `[[{sec}.{name}]]` table:", "", *_rows(inner), ""]
    return "\n".join(out).rstrip()


def render(text: str, tag: str, body: str) -> str:
    pat = re.compile(rf"(<!-- {tag}:begin -->\n).*?(<!-- {tag}:end -->)", re.S)
    if not pat.search(text):
        raise SystemExit(f"marker {tag} missing")
    return pat.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def expected() -> dict[Path, str]:
    c = ROOT / "docs" / "contract.md"
    g = ROOT / "docs" / "configuration.md"
    return {c: render(c.read_text(), "errors", errors_table()), g: render(g.read_text(), "config", config_tables())}


if __name__ == "__main__":
    for path, text in expected().items():
        path.write_text(text)
        print(f"wrote {path}")
