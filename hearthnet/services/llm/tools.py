"""OpenAI tool calling for every backend: the checks, the prompt, the grammar's schema, the parse.

One contract (docs/contract.md §10.9): a request's `tools`, `tool_choice` and
`parallel_tool_calls`, assistant messages with `tool_calls` and `role: tool` results,
all in OpenAI's own shapes, so the gateway passes them through and HTTP backends that
speak OpenAI forward them as they are.

A backend that only writes text (llama.cpp) is told about the tools in the system
message. When the call is forced (`required`, or a named function) its decoding is
constrained by a grammar made from `call_schema()`, so even a 135M model writes a call
whose arguments match the tool's schema. With `auto` the text is parsed (`parse`,
`ToolStream`): a call that is not well-formed, names no known tool or breaks its
schema is handed on as the plain text the model wrote, never as a malformed call.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.validators import validator_for

from hearthnet import constants as C
from hearthnet.errors import HearthNetError

NAME = r"^[a-zA-Z0-9_-]{1,64}$"
_NAME_RE = re.compile(NAME)
OPEN_TAG, CLOSE_TAG = "<tool_call>", "</tool_call>"
_EMPTY_OBJECT = {"type": "object", "properties": {}, "additionalProperties": False}

# --- the wire (JSON Schema fragments of llm.chat@1.1's request and answer) --------------
TOOL_CALL = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 128},
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "properties": {"name": {"type": "string", "pattern": NAME}, "arguments": {"type": "string", "maxLength": 200000}},
            "required": ["name", "arguments"],
        },
    },
    "required": ["id", "type", "function"],
}
TOOL = {
    "type": "object",
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "pattern": NAME},
                "description": {"type": "string", "maxLength": 8192},
                "parameters": {"type": "object"},
                "strict": {"type": ["boolean", "null"]},
            },
            "required": ["name"],
        },
    },
    "required": ["type", "function"],
}
TOOL_CHOICE = {
    "anyOf": [
        {"enum": ["auto", "none", "required"]},
        {"type": "object", "properties": {"type": {"const": "function"},
                                          "function": {"type": "object", "properties": {"name": {"type": "string", "pattern": NAME}},
                                                       "required": ["name"]}},
         "required": ["type", "function"]},
    ]
}
REQUEST_FIELDS = {
    "tools": {"type": "array", "minItems": 1, "items": TOOL},  # the count limit is checked below, with its own message
    "tool_choice": TOOL_CHOICE,
    "parallel_tool_calls": {"type": "boolean"},
}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True)
class ToolRequest:
    """What a request asks of tools: the tools, the choice (auto|none|required|function) and
    the forced function's name, and whether several calls may come in one answer."""

    tools: tuple[Tool, ...]
    choice: str
    function: str | None = None
    parallel: bool = True

    @property
    def forced(self) -> bool:
        return self.choice in ("required", "function")

    @property
    def offered(self) -> tuple[Tool, ...]:
        """The tools the model may call in this answer."""
        if self.choice == "none":
            return ()
        if self.choice == "function":
            return tuple(t for t in self.tools if t.name == self.function)
        return self.tools

    def wire(self) -> dict[str, Any]:
        """The form the llama.cpp worker is sent (plain JSON)."""
        return {"tools": [t.describe() for t in self.tools], "choice": self.choice, "function": self.function, "parallel": self.parallel}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> ToolRequest:
        return cls(tuple(Tool(t["name"], t["description"], t["parameters"]) for t in d["tools"]), d["choice"], d.get("function"),
                   bool(d.get("parallel", True)))

    def openai_fields(self) -> dict[str, Any]:
        """The request's tool fields in OpenAI's shape, for servers that take them as they are."""
        tools = [{"type": "function", "function": t.describe()} for t in self.tools]
        choice: Any = {"type": "function", "function": {"name": self.function}} if self.choice == "function" else self.choice
        out: dict[str, Any] = {"tools": tools, "tool_choice": choice}
        if not self.parallel:
            out["parallel_tool_calls"] = False
        return out


# --- checks ------------------------------------------------------------------------------
def from_body(body: dict[str, Any]) -> ToolRequest | None:
    """The request's tools, checked (None when it has none); raises bad_request or payload_too_large."""
    raw = body.get("tools")
    choice = body.get("tool_choice")
    if not raw:
        if choice not in (None, "none", "auto"):
            raise HearthNetError("bad_request", "tool_choice: a tool is asked for, but the request has no tools")
        return None
    if len(raw) > C.LLM_MAX_TOOLS:
        raise HearthNetError("bad_request", f"tools: {len(raw)} tools; at most {C.LLM_MAX_TOOLS} per request")
    tools: list[Tool] = []
    total = 0
    for i, t in enumerate(raw):
        fn = t["function"]
        params = fn.get("parameters") or _EMPTY_OBJECT
        size = len(json.dumps(params, separators=(",", ":")))
        total += size
        if size > C.LLM_TOOL_SCHEMA_MAX_BYTES:
            raise HearthNetError("payload_too_large", f"tools[{i}].function.parameters is {size} bytes; at most {C.LLM_TOOL_SCHEMA_MAX_BYTES}",
                                 limit=C.LLM_TOOL_SCHEMA_MAX_BYTES)
        if params.get("type", "object") != "object":
            raise HearthNetError("bad_request", f"tools[{i}].function.parameters: a function's parameters are a JSON Schema of an object")
        try:
            validator_for(params).check_schema(params)
        except jsonschema.exceptions.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise HearthNetError("bad_request", f"tools[{i}].function.parameters is not JSON Schema: at {where}: {exc.message}") from None
        if any(x.name == fn["name"] for x in tools):
            raise HearthNetError("bad_request", f"tools[{i}]: a second tool named {fn['name']!r}")
        tools.append(Tool(fn["name"], fn.get("description") or "", params))
    if total > C.LLM_TOOLS_MAX_BYTES:
        raise HearthNetError("payload_too_large", f"tools: the schemas are {total} bytes together; at most {C.LLM_TOOLS_MAX_BYTES}",
                             limit=C.LLM_TOOLS_MAX_BYTES)
    function = None
    if isinstance(choice, dict):
        function = choice["function"]["name"]
        if not any(t.name == function for t in tools):
            raise HearthNetError("bad_request", f"tool_choice: function {function!r} is not among the request's tools")
        choice = "function"
    return ToolRequest(tuple(tools), choice or "auto", function, body.get("parallel_tool_calls", True) is not False)


def check_messages(messages: list[dict[str, Any]]) -> None:
    """Each tool result answers a call an earlier assistant message made; arguments are JSON."""
    open_calls: set[str] = set()
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            for j, call in enumerate(m.get("tool_calls") or []):
                try:
                    json.loads(call["function"]["arguments"])
                except ValueError:
                    raise HearthNetError("bad_request", f"messages[{i}].tool_calls[{j}].function.arguments is not JSON") from None
                open_calls.add(call["id"])
        elif m["role"] == "tool" and m.get("tool_call_id") not in open_calls:
            raise HearthNetError("bad_request", f"messages[{i}]: tool_call_id {m.get('tool_call_id')!r} answers no earlier assistant tool call")


# --- what a text-only model is shown ----------------------------------------------------
def prompt_messages(messages: list[dict[str, Any]], req: ToolRequest | None) -> list[dict[str, str]]:
    """Messages any chat template renders (system, user and assistant text only): the tools
    described in the system message, earlier calls as <tool_call> blocks, results as
    <tool_response> blocks in a user turn. Turns of one role in a row are merged."""
    out: list[dict[str, str]] = []

    def add(role: str, content: str) -> None:
        if out and out[-1]["role"] == role:
            out[-1] = {"role": role, "content": out[-1]["content"] + "\n\n" + content}
        else:
            out.append({"role": role, "content": content})

    guide = _guide(req) if req is not None and req.offered else ""
    rest = messages
    if guide and messages and messages[0]["role"] == "system":
        add("system", messages[0]["content"] + "\n\n" + guide)
        rest = messages[1:]
    elif guide:
        add("system", guide)
    names: dict[str, str] = {}
    for m in rest:
        role = m["role"]
        if role == "assistant" and m.get("tool_calls"):
            blocks = []
            for call in m["tool_calls"]:
                names[call["id"]] = call["function"]["name"]
                blocks.append(OPEN_TAG + json.dumps({"name": call["function"]["name"], "arguments": json.loads(call["function"]["arguments"])},
                                                    ensure_ascii=False) + CLOSE_TAG)
            add("assistant", "\n".join(x for x in [m.get("content") or "", *blocks] if x))
        elif role == "tool":
            result = {"name": m.get("name") or names.get(m["tool_call_id"], ""), "content": m["content"]}
            add("user", "<tool_response>" + json.dumps(result, ensure_ascii=False) + "</tool_response>")
        else:
            add(role, m["content"])
    return out


def _guide(req: ToolRequest) -> str:
    if req.forced:
        # The grammar carries the schema, so the model is shown just what to call and what each
        # argument means: every prompt token is paid for again on a box with two cores.
        lines = "\n".join(f"- {t.name}" + (f": {t.description}" if t.description else "") + f" (arguments: {_arguments(t)})" for t in req.offered)
        what = f"the function {req.function}" if req.choice == "function" else "one of these functions"
        return f"Call {what} now, with arguments taken from the conversation:\n{lines}"
    listed = "\n".join(json.dumps(t.describe(), ensure_ascii=False) for t in req.offered)
    ask = (f"To call a function, answer with {OPEN_TAG}{{\"name\": ..., \"arguments\": {{...}}}}{CLOSE_TAG} and nothing else"
           + (" (one block per call)." if req.parallel else ".") + " Otherwise answer the user in plain text.")
    return "You can call these functions (their parameters are JSON Schema):\n" + listed + "\n" + ask


def _arguments(t: Tool) -> str:
    props = t.parameters.get("properties") or {}
    return ", ".join(k + (f" ({v['description']})" if isinstance(v, dict) and isinstance(v.get("description"), str) else "") for k, v in props.items()) or "none"


# --- the grammar's schema ---------------------------------------------------------------
def call_schema(req: ToolRequest) -> dict[str, Any]:
    """JSON Schema of one forced call, {"name": <a tool>, "arguments": <its parameters>}, for a
    grammar. Each tool's own $defs are hoisted to the top under a prefix, so refs still resolve."""
    defs: dict[str, Any] = {}
    branches = []
    for i, t in enumerate(req.offered):
        params = _hoist(t.parameters, f"t{i}_", defs)
        branches.append({"type": "object", "properties": {"name": {"const": t.name}, "arguments": params},
                         "required": ["name", "arguments"], "additionalProperties": False})
    schema: dict[str, Any] = branches[0] if len(branches) == 1 else {"anyOf": branches}
    if defs:
        schema = {**schema, "$defs": defs}
    return schema


def forced_start(req: ToolRequest) -> tuple[str, dict[str, Any]]:
    """What a forced call's decoding starts from: the text already known (for a named function
    `{"name": "<it>", "arguments": `, evaluated with the prompt instead of generated token by
    token) and the schema of the rest. `forced_text` puts the call back together."""
    if req.choice != "function":
        return "", call_schema(req)
    (tool,) = req.offered
    defs: dict[str, Any] = {}
    args = _hoist(tool.parameters, "t0_", defs)
    return '{"name": ' + json.dumps(tool.name) + ', "arguments": ', ({**args, "$defs": defs} if defs else args)


def forced_text(start: str, generated: str) -> str:
    return start + generated + ("}" if start else "")


def _hoist(schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    local = {**(schema.get("$defs") or {}), **(schema.get("definitions") or {})}

    def ref(r: str) -> str:
        if r == "#":
            return f"#/$defs/{prefix}root"
        for head in ("#/$defs/", "#/definitions/"):
            if r.startswith(head):
                return f"#/$defs/{prefix}{r[len(head):]}"
        return r

    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: (ref(v) if k == "$ref" and isinstance(v, str) else walk(v)) for k, v in x.items() if k not in ("$defs", "definitions", "$schema")}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    top = walk(schema)
    for name, sub in local.items():
        defs[prefix + name] = walk(sub)
    if _mentions(schema, "#"):
        defs[prefix + "root"] = top
    return top


def _mentions(x: Any, target: str) -> bool:
    if isinstance(x, dict):
        return x.get("$ref") == target or any(_mentions(v, target) for v in x.values())
    if isinstance(x, list):
        return any(_mentions(v, target) for v in x)
    return False


# --- what came back ---------------------------------------------------------------------
def new_call(name: str, arguments: Any) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
    return {"id": "call_" + secrets.token_hex(12), "type": "function", "function": {"name": name, "arguments": args}}


def valid_call(req: ToolRequest, name: Any, arguments: Any) -> str | None:
    """Why a call is not one to hand on (None when it is): a known tool, an object matching its schema."""
    tool = next((t for t in req.offered if t.name == name), None)
    if tool is None:
        return f"the model called {name!r}, which is not an offered tool"
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return f"the model's arguments for {name} are not JSON"
    if not isinstance(arguments, dict):
        return f"the model's arguments for {name} are not a JSON object"
    err = jsonschema.exceptions.best_match(validator_for(tool.parameters)(tool.parameters).iter_errors(arguments))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        return f"the model's arguments for {name} break its schema at {where}: {err.message}"
    return None


def parse(text: str, req: ToolRequest) -> list[dict[str, Any]] | None:
    """The calls in a model's text (<tool_call> blocks, or the whole answer one JSON call or a
    list of them, fenced or not), each valid; None when the text is not wholly valid calls."""
    stripped = text.strip()
    if OPEN_TAG in stripped:
        bodies = re.findall(re.escape(OPEN_TAG) + r"(.*?)(?:" + re.escape(CLOSE_TAG) + r"|$)", stripped, flags=re.S)
        if re.sub(re.escape(OPEN_TAG) + r".*?(?:" + re.escape(CLOSE_TAG) + r"|$)", "", stripped, flags=re.S).strip():
            return None  # prose beside the calls: not a clean answer of calls
    else:
        fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", stripped, flags=re.S)
        bodies = [fenced.group(1) if fenced else stripped]
    found: list[Any] = []
    for b in bodies:
        try:
            obj = json.loads(b)
        except ValueError:
            return None
        found.extend(obj if isinstance(obj, list) else [obj])
    calls = []
    for obj in found:
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            return None
        args = obj.get("arguments", obj.get("parameters", {}))
        if valid_call(req, obj["name"], args) is not None:
            return None
        calls.append(new_call(obj["name"], args if isinstance(args, str) else args))
    if not calls or (len(calls) > 1 and not req.parallel):
        return None
    return calls


def forced(text: str, req: ToolRequest, stop_reason: str) -> list[dict[str, Any]]:
    """The one call a grammar-constrained generation wrote; an error when it is not whole."""
    if stop_reason == "length":
        raise HearthNetError("bad_request", "max_tokens ran out before the tool call was complete; ask again with a larger max_tokens")
    try:
        obj = json.loads(text)
    except ValueError:
        raise HearthNetError("internal", "the constrained tool call did not parse as JSON") from None
    why = valid_call(req, obj.get("name") if isinstance(obj, dict) else None, obj.get("arguments") if isinstance(obj, dict) else None)
    if why is not None:
        raise HearthNetError("internal", why)
    return [new_call(obj["name"], obj["arguments"])]


def settle(req: ToolRequest, calls: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Calls a backend returned, checked: (text to add to the answer, the calls to hand on). In
    auto an invalid call turns the answer to plain text, what the model wrote; forced, an error."""
    for c in calls:
        why = valid_call(req, c["function"]["name"], c["function"]["arguments"])
        if why is not None:
            if req.forced:
                raise HearthNetError("internal", why)
            written = "".join(OPEN_TAG + json.dumps({"name": x["function"]["name"], "arguments": x["function"]["arguments"]}, ensure_ascii=False)
                              + CLOSE_TAG for x in calls)
            return written, []
    return "", calls[:1] if not req.parallel else calls


class ToolStream:
    """Tokens of an `auto` answer: text passes on at once, unless it may be a call. An answer
    that opens like JSON or a <tool_call> is held to the end and parsed; text that reaches a
    <tool_call> holds from there. `finish()` gives the held text (plain) or the calls."""

    def __init__(self, req: ToolRequest) -> None:
        self.req = req
        self.sent = ""
        self.held = ""
        self.holding = False

    def feed(self, text: str) -> str:
        if self.holding:
            self.held += text
            return ""
        pending = self.held + text
        if not self.sent:  # the answer's opening decides: a call, or text
            head = pending.lstrip()
            if not head or (head[0] == "<" and OPEN_TAG.startswith(head[:len(OPEN_TAG)]) and len(head) < len(OPEN_TAG)):
                self.held = pending  # not yet known
                return ""
            if head[0] in "{[`" or head.startswith(OPEN_TAG):
                self.holding, self.held = True, pending
                return ""
        at = pending.find(OPEN_TAG)
        if at >= 0:
            self.holding, self.held = True, pending[at:]
            return self._send(pending[:at])
        keep = _partial_tag(pending)  # a tail that may be the start of <tool_call>
        self.held = pending[len(pending) - keep:] if keep else ""
        return self._send(pending[:len(pending) - keep])

    def _send(self, s: str) -> str:
        self.sent += s
        return s

    def finish(self) -> tuple[str, list[dict[str, Any]]]:
        """(text still to send, calls)."""
        held, self.held = self.held, ""
        if self.holding and (calls := parse(held, self.req)):
            return "", calls
        return held, []


def _partial_tag(s: str) -> int:
    for n in range(min(len(OPEN_TAG) - 1, len(s)), 0, -1):
        if OPEN_TAG.startswith(s[-n:]):
            return n
    return 0


__all__ = ["REQUEST_FIELDS", "TOOL_CALL", "Tool", "ToolRequest", "ToolStream", "call_schema", "check_messages", "forced", "forced_start",
           "forced_text", "from_body",
           "new_call", "parse", "prompt_messages", "settle", "valid_call"]
