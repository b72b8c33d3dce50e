"""The OpenAI-compatible gateway, driven by the official `openai` package against real nodes."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import httpx
import openai
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("sentence_transformers")

from hearthnet.gateway.apikeys import ApiKeyStore

MODEL = "smollm2-135m-instruct-q4_1"
CORPUS = Path(__file__).resolve().parents[2] / "tests" / "rag" / "corpus"


def test_openai_client_against_a_spark_whose_model_is_on_the_hearth(mesh):
    async def scenario(m):
        hearth, spark = await m.create(2)
        await m.withdraw(spark, *("llm.chat", "llm.complete", "embed.text"))
        key = ApiKeyStore(spark.config.data_dir).create("tests")[1]
        url = spark.gateway_url
        assert url and url.startswith("http://127.0.0.1:")

        def client_work():
            c = openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)
            out = {}
            out["models"] = sorted(x.id for x in c.models.list())
            ask = [{"role": "user", "content": "Say hello to the village."}]
            r = c.chat.completions.create(model=MODEL, messages=ask, temperature=0, seed=5, max_tokens=12)
            out["chat"] = r
            stream = c.chat.completions.create(model=MODEL, messages=ask, temperature=0, seed=5, max_tokens=12, stream=True,
                                               stream_options={"include_usage": True})
            chunks = list(stream)
            out["streamed"] = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
            out["stream_finish"] = [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1]
            out["stream_usage"] = chunks[-1].usage
            out["stop"] = c.chat.completions.create(model=MODEL, messages=ask, temperature=0, seed=5, max_tokens=12, stop=[r.choices[0].message.content.split()[1]])
            out["complete"] = c.completions.create(model=MODEL, prompt="The village well is", max_tokens=6, temperature=0)
            out["embed"] = c.embeddings.create(model="all-minilm-l6-v2", input=["clean water", "fresh bread"])
            raw = httpx.post(url + "/embeddings", json={"model": "all-minilm-l6-v2", "input": "clean water", "encoding_format": "float"},
                             headers={"Authorization": f"Bearer {key}"}).json()
            out["embed_float"] = raw["data"][0]["embedding"]
            errors = {}
            for label, fn in {
                "no key": lambda: openai.OpenAI(base_url=url, api_key="hn_wrong", max_retries=0).models.list(),
                "unknown model": lambda: c.chat.completions.create(model="gpt-17", messages=ask),
                "empty messages": lambda: c.chat.completions.create(model=MODEL, messages=[]),
                "ctx overflow": lambda: c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "word " * 6000}], max_tokens=8),
            }.items():
                try:
                    fn()
                except openai.APIStatusError as e:
                    errors[label] = (e.status_code, e.body.get("code") if isinstance(e.body, dict) else None)
            out["errors"] = errors
            out["no header"] = httpx.get(url + "/models").status_code
            return out

        out = await asyncio.to_thread(client_work)
        assert out["models"] == ["all-minilm-l6-v2", MODEL]
        r = out["chat"]
        assert r.choices[0].message.content and r.choices[0].finish_reason in ("stop", "length") and r.usage.completion_tokens <= 12
        assert r.usage.prompt_tokens > 0 and r.model == MODEL
        assert out["streamed"] == r.choices[0].message.content and out["stream_finish"] == r.choices[0].finish_reason
        assert out["stream_usage"].completion_tokens == r.usage.completion_tokens
        assert out["stop"].choices[0].finish_reason == "stop" and len(out["stop"].choices[0].message.content) < len(r.choices[0].message.content)
        assert out["complete"].choices[0].text and out["complete"].usage.completion_tokens <= 6
        e = out["embed"]
        assert len(e.data) == 2 and len(e.data[0].embedding) == 384
        assert max(abs(a - b) for a, b in zip(e.data[0].embedding, out["embed_float"], strict=True)) < 1e-6
        assert out["errors"] == {"no key": (401, "unauthorized"), "unknown model": (404, "not_found"), "empty messages": (400, "bad_request"),
                                 "ctx overflow": (413, "payload_too_large")}
        assert out["no header"] == 401
        # Every answer came over the mesh from the hearth.
        assert {t.to_node for t in spark.bus.trace.recent(100) if t.capability in ("llm.chat", "llm.complete", "embed.text")} == {hearth.node_id}
        # A revoked key stops working at once, without a restart.
        ApiKeyStore(spark.config.data_dir).revoke("tests")
        status = await asyncio.to_thread(lambda: httpx.get(url + "/models", headers={"Authorization": f"Bearer {key}"}).status_code)
        assert status == 401

    mesh.run(scenario)


def test_grounded_chat_through_the_gateway_returns_citations(mesh):
    async def scenario(m):
        (node,) = await m.create(1)
        for f in sorted(CORPUS.glob("*.md"))[:4]:
            await node.bus.call("rag.ingest", (1, 0), {"corpus": "village", "data_b64": base64.b64encode(f.read_bytes()).decode(),
                                                       "filename": f.name, "title": f.stem}, timeout=120)
        key = ApiKeyStore(node.config.data_dir).create("tests")[1]

        def work():
            c = openai.OpenAI(base_url=node.gateway_url, api_key=key, max_retries=0, timeout=60)
            return c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "How is the burn cooled?"}], max_tokens=30,
                                             temperature=0, extra_body={"rag": {"corpus": "village", "k": 2}})

        r = await asyncio.to_thread(work)
        cites = r.model_extra["citations"]
        assert len(cites) == 2 and cites[0]["title"] == "burns"

    mesh.run(scenario)
