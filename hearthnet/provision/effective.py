"""The effective profile of one box: profile + site host overrides + hardware tier, after the
implication rules, with where every value came from.

The rules, written once (docs/provisioning.md, "Implications"):

1. The hardware tier picks the language model: the host's `llm` override, else the profile's
   `llm.by_tier[tier]`; a tier the profile leaves out (or `services.llm: false`) gets none,
   and the box's LLM calls go to the mesh.
2. A `llama_cpp` backend implies a pinned model file: the model must be an `llm` entry of
   the model index.
3. RAG implies the embedding service and its model (pinned, an `embedding` entry).
   `rag: true` with `embedding: false` is a conflict.
4. An `ollama` backend implies the Ollama system service.
5. The bridge implies emergency probes and the internet backends; a bridge without probes
   is a conflict. Internet backends elsewhere are a conflict too (they would be probed by no one).
6. Every corpus a profile keeps must be a preset of the site.

Conflicts fail fast with one config_invalid naming both sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearthnet.errors import HearthNetError
from hearthnet.provision import corpora, models
from hearthnet.provision.hardware import HardwareFacts, render_facts
from hearthnet.provision.profiles import LlmChoice, Profile, load_profile
from hearthnet.provision.site import Site

SERVICES = ("llm", "embedding", "rag", "file", "market", "chat", "ui")


@dataclass
class Effective:
    profile: str
    host: str | None
    mode: str
    hardware: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def set(self, key: str, value: Any, source: str) -> None:
        self.values[key] = value
        self.sources[key] = source

    def as_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "host": self.host, "mode": self.mode, "hardware": self.hardware,
                "values": {k: {"value": v, "from": self.sources[k]} for k, v in sorted(self.values.items())}}


def _conflict(message: str, first: str, second: str) -> HearthNetError:
    return HearthNetError("config_invalid", f"{message}: {first} vs {second}", sources=[first, second])


def _pinned(model_id: str, kind: str, source: str, index: Path | None) -> str:
    try:
        entry = models.find(model_id, index)
    except HearthNetError:
        raise _conflict(f"model {model_id!r} is not in the model index", source, f"model index {index or models.DEFAULT_INDEX}") from None
    if entry.kind != kind:
        raise _conflict(f"model {model_id!r} is a {entry.kind} model, not {kind}", source, f"model index {index or models.DEFAULT_INDEX}")
    return entry.id


def effective(profile: str | Profile, facts: HardwareFacts, *, site: Site | None = None, host: str | None = None,
              index: Path | None = None) -> Effective:
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    h = None
    if site is not None and host is not None:
        h = site.hosts.get(host)
        if h is None:
            raise HearthNetError("not_found", f"no host {host!r} in the site (have: {', '.join(site.hosts)})")
    pname = f"profile {prof.profile}"
    hname = f"site hosts.{host}"
    hw = render_facts(facts)
    tier = hw["tier"]
    eff = Effective(prof.profile, host, h.mode if h else "prod", hw)

    eff.set("trust_role", prof.trust_role, f"{pname} trust_role")
    for s in SERVICES:
        if h is not None and s in h.services:
            eff.set(f"services.{s}", h.services[s], f"{hname}.services.{s}")
        else:
            eff.set(f"services.{s}", getattr(prof.services, s), f"{pname} services.{s}")

    # 1. the language model for this tier
    choice: LlmChoice | None
    if not eff.values["services.llm"]:
        choice, src = None, eff.sources["services.llm"]
    elif h is not None and h.llm is not None:
        choice, src = h.llm, f"{hname}.llm"
    elif prof.llm.by_tier.get(tier) is not None:
        choice, src = prof.llm.by_tier[tier], f"{pname} llm.by_tier.{tier} (hardware tier {tier})"
    else:
        choice, src = None, f"hardware tier {tier}: {pname} names no local model for it (calls go to the mesh)"
    eff.set("llm", choice.model_dump(exclude_none=True) if choice else None, src)
    pinned: dict[str, str] = {}
    system: dict[str, str] = {}
    # 2. llama_cpp -> a pinned model file;  4. ollama -> the Ollama service
    if choice is not None and choice.backend == "llama_cpp":
        pinned[_pinned(choice.model, "llm", src, index)] = f"implied by the llama_cpp backend ({src})"
    if choice is not None and choice.backend == "ollama":
        system["ollama"] = f"implied by the ollama backend ({src})"

    # 3. RAG -> embedding service and model
    emb_src = f"{pname} embedding.model"
    if eff.values["services.rag"]:
        if not eff.values["services.embedding"]:
            raise _conflict("RAG needs the embedding service", eff.sources["services.rag"], eff.sources["services.embedding"])
    if eff.values["services.embedding"] or eff.values["services.rag"]:
        why = "services.rag" if eff.values["services.rag"] else "services.embedding"
        pinned[_pinned(prof.embedding.model, "embedding", emb_src, index)] = f"implied by {why} ({eff.sources[why]})"
        eff.set("embedding.model", prof.embedding.model, emb_src)

    # 5. the bridge: probes and internet backends
    if prof.profile == "bridge" and not prof.emergency.probes:
        raise _conflict("the bridge watches the uplink and needs emergency probes", f"{pname} profile", f"{pname} emergency.probes (empty)")
    if prof.llm.internet and prof.profile != "bridge":
        raise _conflict("internet backends belong on the bridge", f"{pname} llm.internet", f"{pname} profile (not bridge)")
    eff.set("llm.internet", [c.model_dump(exclude_none=True) for c in prof.llm.internet], f"{pname} llm.internet")
    eff.set("emergency.probes", list(prof.emergency.probes), f"{pname} emergency.probes")

    # 6. corpora are presets: built in, or defined (or replaced) by the site
    for c in prof.corpora:
        if corpora.preset(c, site.corpora if site else None) is None:
            raise _conflict(f"corpus preset {c!r} is not defined", f"{pname} corpora",
                            f"site corpora ({', '.join(site.corpora) if site and site.corpora else 'none'}) and the built-in presets")
    if eff.values["services.rag"]:
        eff.set("corpora", list(prof.corpora), f"{pname} corpora")
    else:  # a box without RAG keeps no corpus: nothing to seed on it
        eff.set("corpora", [], f"implied by services.rag = false ({eff.sources['services.rag']})")
    eff.set("models.pinned", sorted(pinned), "; ".join(pinned[k] for k in sorted(pinned)) or "no llama_cpp backend and no embedder")
    eff.set("system_services", sorted(system), "; ".join(system.values()) or "none implied")
    eff.set("discovery", prof.discovery.model_dump(), f"{pname} discovery")
    eff.set("limits", prof.limits.model_dump(), f"{pname} limits")
    return eff


__all__ = ["Effective", "effective"]
