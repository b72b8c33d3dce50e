"""The gateway's own pieces: client messages into llm.chat's, calls out as OpenAI's shapes and
stream deltas, the version a request needs, and the model listing with its tool flags."""

import json

import pytest

from hearthnet.bus import CapabilityBus, CapabilityDescriptor
from hearthnet.config import BusConfig
from hearthnet.errors import HearthNetError
from hearthnet.gateway.chat import ChatRequest, ChatShape, chat_body
from hearthnet.gateway.models import listing
from hearthnet.gateway.tool_calls import PLAIN_CHAT, TOOL_CHAT, answer_message, call_deltas, version_for, wire_message

CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"town":"Oslo","days":3,"unit":"celsius"}'}}


def test_client_messages_become_llm_chat_messages():
    assert wire_message({"role": "developer", "content": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}]}, 0) == {
        "role": "system", "content": "Be brief."}
    assert wire_message({"role": "assistant", "content": None, "tool_calls": [CALL]}, 1) == {"role": "assistant", "content": "", "tool_calls": [CALL]}
    as_object = {**CALL, "function": {"name": "get_weather", "arguments": {"town": "Oslo"}}}  # some clients send the object
    assert wire_message({"role": "assistant", "tool_calls": [as_object]}, 1)["tool_calls"][0]["function"]["arguments"] == '{"town":"Oslo"}'
    assert wire_message({"role": "tool", "tool_call_id": "call_1", "content": "rain", "name": "get_weather"}, 2) == {
        "role": "tool", "tool_call_id": "call_1", "content": "rain", "name": "get_weather"}


@pytest.mark.parametrize(("message", "words"), [
    ({"role": "function", "name": "f", "content": "x"}, "role 'function'"),
    ({"role": "tool", "content": "x"}, "tool_call_id"),
    ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:"}}]}, "only text parts"),
    ({"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}, "a tool call is"),
    ({"role": "user", "content": 3}, "content must be text"),
])
def test_messages_the_gateway_cannot_serve_are_one_bad_request(message, words):
    with pytest.raises(HearthNetError) as e:
        wire_message(message, 4)
    assert e.value.code == "bad_request" and words in e.value.message and e.value.message.startswith("messages[4]")


def test_only_a_request_that_uses_tools_needs_llm_chat_1_1():
    plain = chat_body(ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
    assert version_for(plain) == PLAIN_CHAT and "tools" not in plain  # nodes of the previous release still serve it
    tooled = chat_body(ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                                   "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"}))
    assert version_for(tooled) == TOOL_CHAT and tooled["tool_choice"] == "required"
    turns = chat_body(ChatRequest.model_validate({"model": "m", "messages": [{"role": "assistant", "tool_calls": [CALL]},
                                                                             {"role": "tool", "tool_call_id": "call_1", "content": "x"}]}))
    assert version_for(turns) == TOOL_CHAT


def test_an_answer_with_calls_has_openai_shapes_whole_and_streamed():
    out = {"text": "", "tool_calls": [CALL], "stop_reason": "tool_calls", "tokens_in": 9, "tokens_out": 4}
    whole = ChatShape.whole("chatcmpl-1", 0, "m", out)
    assert whole["choices"][0] == {"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [CALL]}, "finish_reason": "tool_calls"}
    assert answer_message({"text": "Hello"}) == {"role": "assistant", "content": "Hello"}
    deltas = call_deltas([CALL, {**CALL, "id": "call_2"}])
    first = deltas[0]["tool_calls"][0]
    assert first == {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    by_index: dict[int, str] = {}
    for d in deltas:
        (tc,) = d["tool_calls"]
        by_index[tc["index"]] = by_index.get(tc["index"], "") + tc["function"]["arguments"]
        if "id" not in tc:
            assert set(tc) == {"index", "function"} and set(tc["function"]) == {"arguments"}
    assert by_index == {0: CALL["function"]["arguments"], 1: CALL["function"]["arguments"]}
    assert len(deltas) > 4  # the arguments come in fragments after the name
    chunks = ChatShape.end("chatcmpl-1", 0, "m", out)
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "tool_calls"}
    assert [c["choices"][0]["delta"] for c in chunks[:-1]] == call_deltas([CALL])
    json.dumps(chunks)


def test_models_list_each_model_with_the_best_tool_flag_any_node_offers():
    bus = CapabilityBus("ed25519:me", BusConfig())

    def offer(node, name, version, params):
        d = CapabilityDescriptor(name, version, {"type": "object"}, params=params)
        if node == "ed25519:me":
            bus.register(d, lambda body, ctx: {})
        else:
            spec = d.spec()
            bus.registry.update_peer(node, "https://peer", [*(bus.registry.entry(node, n, v).spec for n, v in offered.get(node, []))] + [spec])
            offered.setdefault(node, []).append((name, version))

    offered: dict = {}
    offer("ed25519:me", "llm.chat", (1, 1), {"model": "small", "tools": "forced"})
    offer("ed25519:old", "llm.chat", (1, 0), {"model": "older"})
    offer("ed25519:big", "llm.chat", (1, 1), {"model": "small", "tools": "auto"})
    offer("ed25519:me", "embed.text", (1, 0), {"model": "minilm"})
    got = {m["id"]: m["hearthnet"] for m in listing(bus)}
    assert got == {"small": {"kind": "chat", "tools": "auto"}, "older": {"kind": "chat", "tools": "none"}, "minilm": {"kind": "embedding"}}
