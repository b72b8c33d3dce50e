"""The gateway's half of OpenAI tool calling: messages in, calls out, and calls as stream deltas.

llm.chat@1.1 speaks OpenAI's own tool shapes (docs/contract.md §10.9), so requests pass
`tools`, `tool_choice` and `parallel_tool_calls` through as they are, and the serving
node checks them. What is left here: a client's message turned into llm.chat's (text
parts joined, `developer` as system, calls' arguments as JSON text), the answer's
message with `tool_calls`, and a call re-emitted as OpenAI's streamed deltas (`index`,
`id` and `name` first, the arguments in fragments after) — the node hands a call over
whole, whatever its backend could stream.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.types import Version

PLAIN_CHAT: Version = (1, 0)
TOOL_CHAT: Version = (1, 1)  # the first llm.chat that takes tools: a node of an older release is not asked


class ToolFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None

    def tool_body(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.tools is not None:
            out["tools"] = self.tools
        if self.tool_choice is not None:
            out["tool_choice"] = self.tool_choice
        if self.parallel_tool_calls is not None:
            out["parallel_tool_calls"] = self.parallel_tool_calls
        return out


def version_for(body: dict[str, Any]) -> Version:
    """1.1 for a chat that uses tools (its fields or tool turns), else 1.0, which every node takes."""
    uses = any(k in body for k in ("tools", "tool_choice", "parallel_tool_calls")) or any(
        m["role"] == "tool" or "tool_calls" in m for m in body["messages"])
    return TOOL_CHAT if uses else PLAIN_CHAT


def _text(content: Any, where: str) -> str:
    if isinstance(content, list):
        if any(isinstance(p, dict) and p.get("type") not in ("text", None) for p in content):
            raise HearthNetError("bad_request", f"{where}: only text parts are served here (no images or audio)")
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        if not all(isinstance(t, str) for t in texts):
            raise HearthNetError("bad_request", f"{where}: a text part's `text` must be a string")
        return "".join(texts)
    if not isinstance(content, str):
        raise HearthNetError("bad_request", f"{where}: content must be text")
    return content


def wire_message(message: dict[str, Any], i: int) -> dict[str, Any]:
    """One OpenAI chat message as llm.chat's."""
    role, where = message.get("role"), f"messages[{i}]"
    if role == "developer":
        role = "system"
    if role in ("system", "user"):
        return {"role": role, "content": _text(message.get("content"), where)}
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": _text(message.get("content") or "", where)}
        if message.get("tool_calls"):
            out["tool_calls"] = [_wire_call(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(message["tool_calls"])]
        return out
    if role == "tool":
        out = {"role": "tool", "tool_call_id": message.get("tool_call_id"), "content": _text(message.get("content") or "", where)}
        if not isinstance(out["tool_call_id"], str) or not out["tool_call_id"]:
            raise HearthNetError("bad_request", f"{where}: a tool message needs the tool_call_id it answers")
        if isinstance(message.get("name"), str):
            out["name"] = message["name"]
        return out
    raise HearthNetError("bad_request", f"{where}: role {role!r} is not one of system, developer, user, assistant, tool")


def _wire_call(call: Any, where: str) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(call.get("id"), str):
        raise HearthNetError("bad_request", f"{where}: a tool call is {{id, type: function, function: {{name, arguments}}}}")
    args = fn.get("arguments")
    if not isinstance(args, str):  # some clients send the object itself
        args = json.dumps(args if args is not None else {}, ensure_ascii=False, separators=(",", ":"))
    return {"id": call["id"], "type": "function", "function": {"name": fn.get("name"), "arguments": args}}


def answer_message(out: dict[str, Any]) -> dict[str, Any]:
    """The assistant message of a whole answer: content null when it is calls only, as OpenAI does."""
    calls = out.get("tool_calls") or []
    msg: dict[str, Any] = {"role": "assistant", "content": out["text"] if out["text"] or not calls else None}
    if calls:
        msg["tool_calls"] = calls
    return msg


def call_deltas(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Streamed deltas of whole calls: per call its index, id, type and name, then argument fragments."""
    out: list[dict[str, Any]] = []
    step = C.LLM_TOOL_ARGUMENT_FRAGMENT_CHARS
    for i, c in enumerate(calls):
        fn = c["function"]
        out.append({"tool_calls": [{"index": i, "id": c["id"], "type": "function", "function": {"name": fn["name"], "arguments": ""}}]})
        args = fn["arguments"]
        out.extend({"tool_calls": [{"index": i, "function": {"arguments": args[k:k + step]}}]} for k in range(0, len(args), step))
    return out


__all__ = ["PLAIN_CHAT", "TOOL_CHAT", "ToolFields", "answer_message", "call_deltas", "version_for", "wire_message"]
