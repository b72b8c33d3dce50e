"""Tool calling through the gateway, driven by real clients unchanged: the openai SDK, LangChain's
ChatOpenAI.bind_tools and LlamaIndex's OpenAILike, against a spark whose model is on the hearth."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("langchain_openai")
pytest.importorskip("llama_index.llms.openai_like")

from jsonschema import Draft202012Validator  # noqa: E402

from hearthnet.gateway.apikeys import ApiKeyStore  # noqa: E402

MODEL = "smollm2-135m-instruct-q4_1"
PARAMS = {"type": "object", "properties": {"town": {"type": "string", "maxLength": 30}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
          "required": ["town", "days"], "additionalProperties": False}
WEATHER = {"type": "function", "function": {"name": "get_forecast", "description": "The weather forecast for a town", "parameters": PARAMS}}
ASK = [{"role": "user", "content": "What will the weather be in Leeds for the next 3 days?"}]


def _valid(arguments: str) -> dict:
    args = json.loads(arguments)
    Draft202012Validator(PARAMS).validate(args)
    return args


def test_openai_sdk_langchain_and_llamaindex_call_tools_through_the_gateway(mesh):
    async def scenario(m):
        hearth, spark = await m.create(2)
        await m.withdraw(spark, "llm.chat", "llm.complete")
        key = ApiKeyStore(spark.config.data_dir).create("tests")[1]
        url = spark.gateway_url

        def work():
            out = {}
            c = openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=120)
            models = {x.id: x.model_extra for x in c.models.list()}
            out["flags"] = models[MODEL]["hearthnet"]
            named = {"type": "function", "function": {"name": "get_forecast"}}
            r = c.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice=named, temperature=0, max_tokens=64)
            out["forced"] = r
            # Streamed: the SDK's own accumulation of the deltas gives the same call.
            with c.chat.completions.stream(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required", temperature=0, max_tokens=64) as s:
                chunks = [ev.chunk for ev in s if ev.type == "chunk"]
                out["streamed"] = s.get_final_completion()
            out["first_tool_delta"] = next(ch.choices[0].delta.tool_calls[0] for ch in chunks if ch.choices and ch.choices[0].delta.tool_calls)
            out["fragments"] = sum(1 for ch in chunks if ch.choices and ch.choices[0].delta.tool_calls)
            call = r.choices[0].message.tool_calls[0]
            turns = [*ASK, r.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "Leeds: rain, 11 C, then sun."}]
            out["final"] = c.chat.completions.create(model=MODEL, messages=turns, tools=[WEATHER], temperature=0, max_tokens=32)
            out["auto"] = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Say hello."}], tools=[WEATHER],
                                                    tool_choice="auto", temperature=0, max_tokens=12)
            errors = {}
            for label, kw in {
                "not in tools": {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "launch"}}},
                "129 tools": {"tools": [{"type": "function", "function": {"name": f"t{i}", "parameters": {"type": "object"}}} for i in range(129)]},
                "not json schema": {"tools": [{"type": "function", "function": {"name": "x", "parameters": {"type": "object", "required": "town"}}}]},
                "2 MiB schema": {"tools": [{"type": "function", "function": {"name": "x", "parameters": {"type": "object", "description": "y" * (2 << 20)}}}]},
            }.items():
                for stream in (False, True):
                    try:
                        c.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8, stream=stream, **kw)
                    except openai.APIStatusError as e:
                        errors[label, stream] = (e.status_code, e.body.get("code") if isinstance(e.body, dict) else None)
            try:
                c.chat.completions.create(model=MODEL, messages=[*ASK, {"role": "tool", "tool_call_id": "call_nobody", "content": "?"}], max_tokens=8)
            except openai.APIStatusError as e:
                errors["unknown tool_call_id", False] = (e.status_code, e.body.get("code"))
            out["errors"] = errors

            from langchain_core.tools import tool
            from langchain_openai import ChatOpenAI

            @tool
            def get_forecast(town: str, days: int) -> str:
                """The weather forecast for a town."""
                return f"{town}: sun for {days} days"

            lc = ChatOpenAI(base_url=url, api_key=key, model=MODEL, temperature=0, max_tokens=64, max_retries=0, timeout=120)
            bound = lc.bind_tools([get_forecast], tool_choice="get_forecast")
            out["lc"] = bound.invoke(ASK[0]["content"])
            streamed = None
            for piece in bound.stream(ASK[0]["content"]):
                streamed = piece if streamed is None else streamed + piece
            out["lc_stream"] = streamed
            out["lc_plain"] = lc.invoke("Say hello.").content

            from llama_index.core.llms import ChatMessage
            from llama_index.core.tools import FunctionTool
            from llama_index.llms.openai_like import OpenAILike

            def get_forecast_li(town: str, days: int) -> str:
                """The weather forecast for a town."""
                return f"{town}: sun for {days} days"

            li = OpenAILike(model=MODEL, api_base=url, api_key=key, is_chat_model=True, is_function_calling_model=True, temperature=0,
                            max_tokens=64, max_retries=0, timeout=120)
            ftool = FunctionTool.from_defaults(fn=get_forecast_li, name="get_forecast")
            resp = li.chat_with_tools([ftool], user_msg=ASK[0]["content"], tool_required=True)
            out["li_calls"] = li.get_tool_calls_from_response(resp, error_on_no_tool_call=True)
            out["li_plain"] = li.chat([ChatMessage(role="user", content="Say hello.")]).message.content
            return out

        out = await asyncio.to_thread(work)
        assert out["flags"] == {"kind": "chat", "tools": "forced"}
        r = out["forced"]
        msg, choice = r.choices[0].message, r.choices[0]
        assert choice.finish_reason == "tool_calls" and msg.content is None and len(msg.tool_calls) == 1
        call = msg.tool_calls[0]
        assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_forecast"
        _valid(call.function.arguments)
        s = out["streamed"]
        assert s.choices[0].finish_reason == "tool_calls"
        assert s.choices[0].message.tool_calls[0].function.name == "get_forecast"
        _valid(s.choices[0].message.tool_calls[0].function.arguments)
        first = out["first_tool_delta"]
        assert first.index == 0 and first.id and first.function.name == "get_forecast" and first.function.arguments == ""
        assert out["fragments"] >= 2  # the arguments arrived in pieces after the name
        final = out["final"].choices[0]
        assert final.finish_reason in ("stop", "length") and final.message.content and not final.message.tool_calls
        auto = out["auto"].choices[0]
        assert auto.message.content and (auto.message.tool_calls is None) == (auto.finish_reason != "tool_calls")
        want = {"not in tools": (400, "bad_request"), "129 tools": (400, "bad_request"), "not json schema": (400, "bad_request"),
                "2 MiB schema": (413, "payload_too_large")}
        assert out["errors"] == {**{(k, s): v for k, v in want.items() for s in (False, True)}, ("unknown tool_call_id", False): (400, "bad_request")}
        lc = out["lc"]
        assert len(lc.tool_calls) == 1 and lc.tool_calls[0]["name"] == "get_forecast"
        Draft202012Validator(PARAMS | {"additionalProperties": True}).validate(lc.tool_calls[0]["args"])
        assert out["lc_stream"].tool_calls[0]["name"] == "get_forecast" and out["lc_stream"].tool_calls[0]["args"] == lc.tool_calls[0]["args"]
        assert out["lc_plain"] and out["li_plain"]
        (li,) = out["li_calls"]
        assert li.tool_name == "get_forecast" and set(li.tool_kwargs) >= {"town", "days"}
        # Every call was answered by the hearth, at llm.chat 1.1 for the tool calls.
        traces = [t for t in spark.bus.trace.recent(200) if t.capability == "llm.chat"]
        assert {t.to_node for t in traces} == {hearth.node_id}

    mesh.run(scenario)
