"""Corpus presets and the seeding plan (corpora.json).

Three presets exist without a site: `hearthnet_docs` (the project's own docs/, so the
first-run assistant can answer setup questions), `village_handbook` (empty until the
site names its documents) and `workspace` (an empty per-household corpus). A site's
`corpora:` entry of the same name replaces the built-in one.

Source paths: `@hearthnet/docs` is the docs shipped with the installed package; any other
relative path is relative to the seeding root (`hearthnet rag seed --root`, by default
the directory holding the plan; for a site's presets, the site file's directory).
Seeding goes through the running node, so it needs membership and an embedder on the mesh;
it is idempotent because ingest is (a document already in a corpus, by CID, is skipped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hearthnet.errors import HearthNetError
from hearthnet.provision.profiles import load_yaml, validate
from hearthnet.storage import package_dir
from hearthnet.provision.site import CORPUS_RE, CorpusPreset, CorpusSource

PROJECT_PREFIX = "@hearthnet/"
PROJECT_DIRS = ("docs", "profiles")  # the folders the package ships (hearthnet.docs, hearthnet.profiles)

BUILTIN: dict[str, CorpusPreset] = {
    "hearthnet_docs": CorpusPreset(description="HearthNet's own documentation, so the assistant can answer setup questions.",
                                   language="en", sources=[CorpusSource(path="@hearthnet/docs", extensions=[".md"])]),
    "village_handbook": CorpusPreset(description="The village's rules, rotas and how-tos (the site names the documents)."),
    "workspace": CorpusPreset(description="An empty corpus for a household's own papers."),
}


class PlanCorpus(CorpusPreset):
    corpus: str = Field(pattern=CORPUS_RE)


class Plan(BaseModel):
    """corpora.json as render-profile writes it."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(1, ge=1, le=1)
    corpora: list[PlanCorpus]


def preset(name: str, site_presets: dict[str, CorpusPreset] | None = None) -> CorpusPreset | None:
    return (site_presets or {}).get(name) or BUILTIN.get(name)


def plan_doc(names: list[str], site_presets: dict[str, CorpusPreset] | None = None) -> dict[str, Any]:
    out = []
    for c in names:
        p = preset(c, site_presets)
        if p is None:
            raise HearthNetError("config_invalid", f"corpus preset {c!r} is neither built in ({', '.join(BUILTIN)}) nor in the site")
        out.append({"corpus": c, **p.model_dump()})
    return {"version": 1, "corpora": out}


def load_plan(path: Path) -> Plan:
    return validate(Plan, load_yaml(path), Path(path))  # JSON is YAML: one loader, one error style


@dataclass
class SeedCorpus:
    corpus: str
    language: str
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def resolve(source: str, root: Path) -> Path:
    if source.startswith(PROJECT_PREFIX):
        top, _, rest = source[len(PROJECT_PREFIX):].partition("/")
        if top not in PROJECT_DIRS:
            raise HearthNetError("config_invalid", f"corpus source {source}: the package ships only {', '.join('@hearthnet/' + d for d in PROJECT_DIRS)}")
        return package_dir(f"hearthnet.{top}") / rest if rest else package_dir(f"hearthnet.{top}")
    p = Path(source)
    return p if p.is_absolute() else root / p


def collect(plan: Plan, root: Path) -> list[SeedCorpus]:
    """The files each corpus gets, in a stable order; too-large files are skipped with a reason.
    A missing source is an error (a typo must not seed an empty corpus silently)."""
    out = []
    for c in plan.corpora:
        sc = SeedCorpus(c.corpus, c.language)
        seen: set[Path] = set()
        for src in c.sources:
            base = resolve(src.path, root)
            if base.is_dir():
                # Symlinks are not followed: a source tree cannot pull in files from elsewhere.
                cand = sorted(p for p in base.rglob("*") if p.is_file() and not p.is_symlink() and p.suffix.lower() in src.extensions)
            elif base.is_file():
                cand = [base]
            else:
                raise HearthNetError("not_found", f"corpus {c.corpus}: source {src.path} ({base}) does not exist")
            for p in cand:
                if p in seen:
                    continue
                seen.add(p)
                size = p.stat().st_size
                if size > src.max_bytes:
                    sc.skipped.append((p, f"{size} bytes > max_bytes {src.max_bytes}"))
                elif size == 0:
                    sc.skipped.append((p, "empty file"))
                else:
                    sc.files.append(p)
        out.append(sc)
    return out


__all__ = ["BUILTIN", "Plan", "SeedCorpus", "collect", "load_plan", "plan_doc", "preset", "resolve"]
