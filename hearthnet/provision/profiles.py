"""Profile manifests: what a box of one role (anchor, hearth, spark, bridge) runs.

A profile is YAML a village volunteer can read (`profiles/<name>.yaml`); its shape is the
pydantic model `Profile`, exported as profiles/schemas/profile.schema.json so editors can
validate while typing. Loading never raises anything but HearthNetError(config_invalid)
with the file, the key path and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hearthnet.errors import HearthNetError, validation_message, validation_path
from hearthnet.storage import package_dir, read_text
from hearthnet.provision.hardware import Tier

PROFILES_DIR = package_dir("hearthnet.profiles")  # profiles/ in a checkout, package data in a wheel
NAMES = ("anchor", "hearth", "spark", "bridge")
Backend = Literal["llama_cpp", "ollama", "lmstudio", "vllm", "hf_api", "anthropic_api", "nemotron", "openbmb"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LlmChoice(_M):
    backend: Backend = Field(description="How the model runs: llama_cpp in-process (a pinned GGUF), or an HTTP server.")
    model: str = Field(min_length=1, description="A model-index id for llama_cpp; the server's model name otherwise.")
    url: str | None = Field(None, description="Server URL for HTTP backends (empty: the backend's default).")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key (internet backends).")


class Services(_M):
    llm: bool = Field(True, description="Serve a language model when the hardware tier has one.")
    embedding: bool = Field(True, description="Serve embed.text.")
    rag: bool = Field(True, description="Keep RAG corpora and answer rag.query.")
    file: bool = Field(True, description="Share files (blob store).")
    market: bool = Field(True, description="Marketplace posts.")
    chat: bool = Field(True, description="Messages with store-and-forward.")
    ui: bool = Field(True, description="Web UI and the OpenAI-compatible gateway on loopback.")


class Llm(_M):
    # Per hardware tier (docs/provisioning.md); a tier that is missing or null gets no local LLM.
    by_tier: dict[Tier, LlmChoice | None] = Field(default_factory=dict)
    internet: list[LlmChoice] = Field(default_factory=list, description="Cloud backends; withdrawn when the box is offline.")


class Embedding(_M):
    model: str = Field("all-minilm-l6-v2", description="Model-index id of the embedding model.")


class Discovery(_M):
    mdns: bool = True
    udp: bool = True


class Emergency(_M):
    probes: list[str] = Field(default_factory=list, description="DNS names or http(s) URLs to probe; empty: never probe the internet.")


class Limits(_M):
    disk_gc_threshold: float = Field(0.80, gt=0, le=1, description="Disk use above which unpinned blobs are collected.")
    rate_soft_rps_per_cap: float = Field(10.0, gt=0, description="Requests/s per peer and capability before the soft limit.")


class Profile(_M):
    """One role of box (profiles/<profile>.yaml)."""

    profile: Literal["anchor", "hearth", "spark", "bridge"]
    description: str = Field("", max_length=500)
    trust_role: Literal["member", "trusted", "anchor"] = Field("member", description="Trust level the box joins with.")
    services: Services = Field(default_factory=Services)
    llm: Llm = Field(default_factory=Llm)
    embedding: Embedding = Field(default_factory=Embedding)
    corpora: list[str] = Field(default_factory=list, description="Corpus presets (from the site manifest) this box keeps.")
    discovery: Discovery = Field(default_factory=Discovery)
    emergency: Emergency = Field(default_factory=Emergency)
    limits: Limits = Field(default_factory=Limits)


def load_yaml(path: Path) -> Any:
    """YAML from a file; syntax errors name the file and the line."""
    text = read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise HearthNetError("config_invalid", f"{path}:{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})", path=str(path)) from None


def validate(model: type[BaseModel], data: Any, path: Path) -> Any:
    """data as `model`, or config_invalid naming the file, the key path and what was expected."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HearthNetError("config_invalid", f"{path}: at {validation_message(exc, '(top)', show_input=True)}", path=str(path),
                             key=validation_path(exc, "(top)")) from None


def load_profile(name_or_path: str | Path, profiles_dir: Path | None = None) -> Profile:
    p = Path(name_or_path)
    if str(name_or_path) in NAMES:
        p = (profiles_dir or PROFILES_DIR) / f"{name_or_path}.yaml"
    elif not p.suffix:
        raise HearthNetError("not_found", f"no profile {name_or_path!r} (have: {', '.join(NAMES)}, or give a .yaml path)")
    prof = validate(Profile, load_yaml(p), p)
    if p.stem in NAMES and prof.profile != p.stem:
        raise HearthNetError("config_invalid", f"{p}: at profile: says {prof.profile!r} but the file is {p.name}", path=str(p), key="profile")
    return prof


def schema() -> dict[str, Any]:
    s = Profile.model_json_schema()
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["$id"] = "https://hearthnet.invalid/schemas/profile.schema.json"
    return s


__all__ = ["NAMES", "PROFILES_DIR", "LlmChoice", "Profile", "load_profile", "load_yaml", "schema", "validate"]
