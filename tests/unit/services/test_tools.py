"""The tool contract on its own (services/llm/tools.py): checks, the prompt, the grammar's schema, the parse."""

import json

import pytest
from jsonschema import Draft202012Validator

from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.services.llm import tools

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a town",
                                            "parameters": {"type": "object", "properties": {"town": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                                                           "required": ["town"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}


def req(choice="auto", parallel=True, *more):
    return tools.from_body({"tools": [WEATHER, TIME, *more], "tool_choice": choice, "parallel_tool_calls": parallel})


def fn(name, params):
    return {"type": "function", "function": {"name": name, "parameters": params}}


@pytest.mark.parametrize(("body", "code", "words"), [
    ({"tools": [fn(f"t{i}", {"type": "object"}) for i in range(129)]}, "bad_request", "at most 128"),
    ({"tools": [fn("big", {"type": "object", "description": "x" * (2 << 20)})]}, "payload_too_large", "bytes"),
    ({"tools": [fn(f"t{i}", {"type": "object", "description": "x" * 60000}) for i in range(5)]}, "payload_too_large", "together"),
    ({"tools": [fn("bad", {"type": "object", "properties": {"a": {"type": "nonsense"}}})]}, "bad_request", "not JSON Schema"),
    ({"tools": [fn("arr", {"type": "array"})]}, "bad_request", "of an object"),
    ({"tools": [WEATHER, WEATHER]}, "bad_request", "second tool"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_time"}}}, "bad_request", "not among"),
    ({"tool_choice": "required"}, "bad_request", "no tools"),
])
def test_bad_tools_are_one_coded_line(body, code, words):
    with pytest.raises(HearthNetError) as e:
        tools.from_body(body)
    assert e.value.code == code and words in e.value.message and "\n" not in e.value.message


def test_the_limits_are_what_the_contract_says():
    assert C.LLM_MAX_TOOLS == 128
    assert tools.from_body({"tools": [fn(f"t{i}", {"type": "object"}) for i in range(128)]}).choice == "auto"
    assert tools.from_body({}) is None and tools.from_body({"tool_choice": "none"}) is None


def test_a_tool_result_must_answer_an_earlier_call():
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"town": "Oslo"}'}}
    ok = [{"role": "user", "content": "?"}, {"role": "assistant", "content": "", "tool_calls": [call]},
          {"role": "tool", "tool_call_id": "call_1", "content": "12 C"}]
    tools.check_messages(ok)
    with pytest.raises(HearthNetError, match="call_2.*answers no earlier") as e:
        tools.check_messages([*ok, {"role": "tool", "tool_call_id": "call_2", "content": "?"}])
    assert e.value.code == "bad_request"
    broken = {**call, "function": {"name": "get_weather", "arguments": "{town"}}
    with pytest.raises(HearthNetError, match="not JSON"):
        tools.check_messages([{"role": "assistant", "content": "", "tool_calls": [broken]}])


def test_the_prompt_describes_the_tools_and_renders_tool_turns_as_text():
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"town": "Oslo"}'}}
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "", "tool_calls": [call]}, {"role": "tool", "tool_call_id": "call_1", "content": "12 C"},
            {"role": "user", "content": "Thanks, and?"}]
    out = tools.prompt_messages(msgs, req("auto"))
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]  # the result and the next question merged
    assert out[0]["content"].startswith("Be brief.") and '"name": "get_weather"' in out[0]["content"] and "<tool_call>" in out[0]["content"]
    assert out[2]["content"] == '<tool_call>{"name": "get_weather", "arguments": {"town": "Oslo"}}</tool_call>'
    assert out[3]["content"].startswith('<tool_response>{"name": "get_weather", "content": "12 C"}</tool_response>')
    assert all(set(m) == {"role", "content"} for m in out)
    # tool_choice none: the tools are not offered, the turns are still text.
    none = tools.prompt_messages(msgs, req("none"))
    assert none[0]["content"] == "Be brief." and none[2]["content"].startswith("<tool_call>")
    forced = tools.prompt_messages(msgs[1:2], req({"type": "function", "function": {"name": "get_time"}}))
    assert forced[0]["role"] == "system" and "Call the function get_time now" in forced[0]["content"] and "get_weather" not in forced[0]["content"]


def test_the_grammar_schema_takes_exactly_the_calls_that_are_valid():
    node = {"type": "object", "properties": {"label": {"type": "string"}, "kids": {"type": "array", "items": {"$ref": "#"}}}, "required": ["label"]}
    tree = fn("plant", {"type": "object", "properties": {"root": {"$ref": "#/$defs/node"}, "kind": {"$ref": "#/definitions/kind"}},
                        "required": ["root"], "$defs": {"node": {"$ref": "#/$defs/inner"}, "inner": node},
                        "definitions": {"kind": {"enum": ["tree", "bush"]}}})
    r = req("required", True, tree)
    schema = tools.call_schema(r)
    Draft202012Validator.check_schema(schema)
    v = Draft202012Validator(schema)
    own = Draft202012Validator(tree["function"]["parameters"])
    for args in ({"root": {"label": "a", "kids": [{"root": {"label": "b"}}]}, "kind": "bush"}, {"root": {"label": "a", "kids": [{"label": "b"}]}},
                 {"root": {"kids": []}}, {"root": {"label": "a"}, "kind": "cactus"}):
        assert v.is_valid({"name": "plant", "arguments": args}) == own.is_valid(args)  # the hoisted refs mean what they meant
    assert v.is_valid({"name": "plant", "arguments": {"root": {"label": "a", "kids": [{"root": {"label": "b"}}]}, "kind": "bush"}})
    assert v.is_valid({"name": "get_weather", "arguments": {"town": "Oslo", "unit": "c"}})
    assert not v.is_valid({"name": "get_weather", "arguments": {"unit": "c"}})
    assert not v.is_valid({"name": "get_weather", "arguments": {"town": "Oslo"}, "extra": 1})
    assert not v.is_valid({"name": "nope", "arguments": {}})
    one = tools.call_schema(req({"type": "function", "function": {"name": "get_time"}}))
    assert one["properties"]["name"] == {"const": "get_time"} and "anyOf" not in one


@pytest.mark.parametrize("text", [
    '<tool_call>{"name": "get_weather", "arguments": {"town": "Oslo"}}</tool_call>',
    ' {"name": "get_weather", "arguments": {"town": "Oslo"}}\n',
    '```json\n{"name": "get_weather", "parameters": {"town": "Oslo"}}\n```',
    '[{"name": "get_weather", "arguments": {"town": "Oslo"}}]',
    '<tool_call>{"name": "get_weather", "arguments": {"town": "Oslo"}}',  # the model stopped before closing the tag
])
def test_calls_are_parsed_from_the_forms_models_write(text):
    (call,) = tools.parse(text, req())
    assert call["type"] == "function" and call["id"].startswith("call_") and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"town": "Oslo"}


@pytest.mark.parametrize("text", [
    "The weather is fine.",
    '{"name": "get_weather", "arguments": {"town": 3}}',  # breaks the schema
    '{"name": "launch", "arguments": {}}',  # not a tool
    '{"name": "get_weather", "arguments": {"town": "Oslo"}',  # not JSON
    '<tool_call>{"name": "get_weather", "arguments": {"town": "Oslo"}}</tool_call> and then some prose',
    '{"town": "Oslo"}',
])
def test_anything_but_valid_calls_stays_text(text):
    assert tools.parse(text, req()) is None


def test_several_calls_only_when_parallel():
    two = '<tool_call>{"name": "get_weather", "arguments": {"town": "Oslo"}}</tool_call>\n<tool_call>{"name": "get_time", "arguments": {"tz": "UTC"}}</tool_call>'
    assert [c["function"]["name"] for c in tools.parse(two, req())] == ["get_weather", "get_time"]
    assert tools.parse(two, req("auto", False)) is None


def feed(stream, pieces):
    sent = "".join(stream.feed(p) for p in pieces)
    rest, calls = stream.finish()
    return sent, rest, calls


def test_the_stream_passes_text_at_once_and_holds_what_may_be_a_call():
    s = tools.ToolStream(req())
    assert s.feed("Hello") == "Hello" and s.feed(" there") == " there"
    assert s.finish() == ("", [])
    sent, rest, calls = feed(tools.ToolStream(req()), ['{"name": "get_', 'weather", "arguments": {"town": "Oslo"}}'])
    assert sent == "" and rest == "" and calls[0]["function"]["name"] == "get_weather"
    sent, rest, calls = feed(tools.ToolStream(req()), ["  <tool", "_call>", '{"name": "get_time", "arguments": {"tz": "UTC"}}</tool_call>'])
    assert sent == "" and calls[0]["function"]["name"] == "get_time"
    # Text, then a call: the text is sent as it comes, the call is held and parsed.
    sent, rest, calls = feed(tools.ToolStream(req()), ["Let me look. <tool", "_call>", '{"name": "get_time", "arguments": {"tz": "UTC"}}</tool_call>'])
    assert sent == "Let me look. " and rest == "" and calls[0]["function"]["name"] == "get_time"
    # A held opening that turns out not to be a call comes out whole, as text.
    sent, rest, calls = feed(tools.ToolStream(req()), ["{not a call", "}"])
    assert (sent, rest, calls) == ("", "{not a call}", [])
    sent, rest, calls = feed(tools.ToolStream(req()), ["<b>bold</b> <tool", "box"])
    assert sent + rest == "<b>bold</b> <toolbox" and calls == []


def test_settle_turns_invalid_server_calls_into_text_unless_forced():
    good = tools.new_call("get_weather", {"town": "Oslo"})
    bad = tools.new_call("get_weather", "{town")
    assert tools.settle(req(), [good]) == ("", [good])
    extra, calls = tools.settle(req(), [bad])
    assert calls == [] and extra.startswith("<tool_call>") and "{town" in extra
    with pytest.raises(HearthNetError) as e:
        tools.settle(req("required"), [bad])
    assert e.value.code == "internal"
    assert tools.settle(req("auto", False), [good, good])[1] == [good]


def test_a_forced_call_cut_short_is_an_error_not_a_broken_call():
    r = req("required")
    (call,) = tools.forced('{"name": "get_time", "arguments": {"tz": "UTC"}}', r, "stop")
    assert json.loads(call["function"]["arguments"]) == {"tz": "UTC"}
    with pytest.raises(HearthNetError, match="max_tokens") as e:
        tools.forced('{"name": "get_time", "arguments": {"tz": "UT', r, "length")
    assert e.value.code == "bad_request"


def test_openai_and_wire_forms():
    r = req({"type": "function", "function": {"name": "get_time"}}, False)
    assert r.openai_fields()["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert r.openai_fields()["parallel_tool_calls"] is False
    assert tools.ToolRequest.from_wire(json.loads(json.dumps(r.wire()))) == r


def test_a_named_call_starts_from_what_is_known_and_is_put_back_together():
    r = req({"type": "function", "function": {"name": "get_weather"}})
    start, schema = tools.forced_start(r)
    assert start == '{"name": "get_weather", "arguments": ' and schema == WEATHER["function"]["parameters"]
    (call,) = tools.forced(tools.forced_text(start, '{"town": "Oslo"}'), r, "stop")
    assert call["function"] == {"name": "get_weather", "arguments": '{"town":"Oslo"}'}
    assert tools.forced_start(req("required")) == ("", tools.call_schema(req("required")))
