"""The site manifest: one village — its community, its boxes and their profiles, where
bootstrap happens, where models and corpora come from.

Shape: the pydantic model `Site`, exported as profiles/schemas/site.schema.json. Paths in
a site (hardware facts, model index, corpus sources) are relative to the site file.
Loading errors name the file, the key path and what was expected (config_invalid).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hearthnet.events.types import PolicyData
from hearthnet.provision.profiles import LlmChoice, load_yaml, validate

HOST_RE = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"  # a DNS label, so it can be a hostname too
CORPUS_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Community(_M):
    name: str = Field(min_length=1, max_length=120)
    policy: PolicyData = Field(default_factory=PolicyData)


class Models(_M):
    index: str | None = Field(None, pattern=r"^[^/].*\.json$", description=(
        "The site's own model index: the package's with the site's entries (hearthnet models add --index FILE), "
        "a .json path inside the site file's directory (provisioners copy it along with the site). "
        "Rendered beside each box's config as models.index.json. Empty: the package's."))
    mirrors: list[str] = Field(default_factory=list, description="Directories or http(s) URLs holding model files by name, tried in order.")

    @field_validator("index")
    @classmethod
    def _inside(cls, v: str | None) -> str | None:
        if v is not None and ".." in Path(v).parts:
            raise ValueError(f"models.index {v!r} must stay inside the site file's directory (no '..')")
        return v


class CorpusSource(_M):
    path: str = Field(min_length=1, description="A directory or file, relative to the site file.")
    extensions: list[str] = Field(default_factory=lambda: [".md", ".pdf", ".txt"], description="Files taken from a directory.")
    max_bytes: int = Field(20 * 2**20, ge=1, description="Larger files are skipped (and reported).")


class CorpusPreset(_M):
    description: str = ""
    language: str = Field("und", pattern=r"^[a-zA-Z]{2,8}(-[a-zA-Z0-9]{1,8})*$")
    sources: list[CorpusSource] = Field(default_factory=list, description="Empty: the corpus starts empty (a household workspace).")


class Host(_M):
    profile: Literal["anchor", "hearth", "spark", "bridge"]
    mode: Literal["dev", "prod"] = Field("prod", description="prod: pinned, hardened; dev: local checkout, loopback, debug logs.")
    address: str | None = Field(None, description="How Ansible and peers reach it (name or IP); empty: the host name.")
    hardware: str | None = Field(None, description="Recorded facts (detect-hardware --json), relative to the site file; empty: detect on the box.")
    node_id: str | None = Field(None, pattern=r"^ed25519:[A-Za-z0-9_-]{43}$", description="Filled in at bootstrap (hearthnet id --json).")
    llm: LlmChoice | None = Field(None, description="Overrides the profile's choice for this box's hardware tier.")
    services: dict[Literal["llm", "embedding", "rag", "file", "market", "chat", "ui"], bool] = Field(
        default_factory=dict, description="Overrides of the profile's services.")


class Site(_M):
    """One village (profiles/examples/site.yaml is a worked example)."""

    community: Community
    bootstrap: list[str] = Field(min_length=1, description="https URLs of the anchor(s) new boxes join through.")
    models: Models = Field(default_factory=Models)
    corpora: dict[str, CorpusPreset] = Field(default_factory=dict)
    hosts: dict[str, Host] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> Site:
        import re

        for h in self.hosts:
            if not re.match(HOST_RE, h):
                raise ValueError(f"host name {h!r} must be a DNS label (a-z, 0-9, -)")
        for c in self.corpora:
            if not re.match(CORPUS_RE, c):
                raise ValueError(f"corpus name {c!r}: 1-64 of a-z 0-9 _ -")
        for url in self.bootstrap:
            if not url.startswith("https://"):
                raise ValueError(f"bootstrap endpoint {url!r} must be an https:// URL (the anchor's transport)")
        anchors = [h for h, v in self.hosts.items() if v.profile == "anchor"]
        if len(anchors) != 1:
            raise ValueError(f"a site has exactly one anchor host (it holds the community root key); found {len(anchors)}")
        return self


def model_index(site: Site, site_file: Path) -> Path | None:
    """The site's own model index file, or None for the package's."""
    return Path(site_file).parent / site.models.index if site.models.index else None


def model_mirrors(site: Site, site_file: Path) -> list[Path]:
    """The site's model mirrors that are directories on this machine (URLs are for `models fetch` on a box)."""
    return [Path(site_file).parent / m for m in site.models.mirrors if "://" not in m]


def load_site(path: Path) -> Site:
    return validate(Site, load_yaml(path), Path(path))


def schema() -> dict[str, Any]:
    s = Site.model_json_schema()
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["$id"] = "https://hearthnet.invalid/schemas/site.schema.json"
    return s


__all__ = ["CorpusPreset", "Host", "Site", "load_site", "model_index", "model_mirrors", "schema"]
