"""Offline bundles: everything a box with no internet needs to be provisioned.

    DIR/models/<file>        every pinned model file of the given locks (verified copies)
    DIR/models.lock.json     the union of those locks
    DIR/corpora/<corpus>/…   the documents of the given corpus plans
    DIR/corpora.json         the plans, with sources rewritten to point into the bundle
    DIR/wheels/*.whl         wheels for this platform (pip wheel; never an sdist).
                             llama-cpp-python is the portable wheel of the wheelhouse
                             (llama_wheel.build: pinned flags, built once, checked), never
                             one pip builds or caches
    DIR/wheels.json          which of them each set of HearthNet's extras installs
                             (pip's resolver, no index): a box is sent only its set;
                             "installer" names the tool that installs them on a box
    DIR/tools/uv             that installer: uv's binary, from its pinned PyPI wheel
    DIR/SHA256SUMS           sha256 of every other file, `sha256sum -c` compatible

A bundle is built in a temporary sibling directory and renamed into place, and is
verified (every listed file present and matching, nothing unlisted) before anything
uses it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.provision import corpora
from hearthnet.provision.lock import Lock, copy_verified, load_lock
from hearthnet.provision.models import find_local
from hearthnet.storage import sha256_of

SUMS = "SHA256SUMS"
WHEEL_SETS = "wheels.json"


def _merged_lock(paths: list[Path]) -> Lock:
    by_id: dict[str, Any] = {}
    for p in paths:
        for m in load_lock(p).models:
            if m.id in by_id and by_id[m.id].sha256 != m.sha256:
                raise HearthNetError("conflict", f"model {m.id} is pinned to two different files ({p} and an earlier lock)")
            by_id[m.id] = m
    return Lock(version=1, models=[by_id[k] for k in sorted(by_id)])


def _pip(args: list[str], what: str, env: dict[str, str] | None = None) -> str:
    """The controller's pip; its last line of stderr as one error when it fails. Returns its stdout."""
    p = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise HearthNetError("internal", f"{what}: {last}")
    return p.stdout


def _wheels(dest: Path, specs: list[str], no_deps: bool, step: Callable[[str], None]) -> None:
    """pip wheel the specs into dest: wheels only, llama-cpp-python from the portable wheelhouse."""
    from hearthnet.provision.actions import llama_wheel

    llama: list[str] = []
    if any("llm" in s or "llama" in s for s in specs):
        b = llama_wheel.build(say=step)
        shutil.copyfile(b.wheel_path, dest / b.wheel)
        llama = ["--find-links", b.dir, "--only-binary", llama_wheel.PACKAGE]
    _pip(["wheel", "--quiet", "--wheel-dir", str(dest), "--no-build-isolation", *llama, *(["--no-deps"] if no_deps else []), *specs],
         f"pip wheel {' '.join(specs)}")
    stray = [f.name for f in dest.iterdir() if not f.name.endswith(".whl")]
    if stray:
        raise HearthNetError("internal", f"pip left non-wheel files in the bundle: {', '.join(stray)}")


def _installer(root: Path) -> str:
    """uv's binary, taken out of its pinned wheel into root/tools/uv: the box runs it as it is
    (no venv with pip, no ensurepip: a minute each under emulation). Returns its path in the bundle."""
    with tempfile.TemporaryDirectory(prefix="hearthnet-uv-") as t:
        _pip(["download", "--quiet", "--no-deps", "--only-binary", ":all:", "--dest", t, f"uv=={C.UV_VERSION}"], f"pip download uv=={C.UV_VERSION}")
        wheel = next(Path(t).glob("uv-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            member = next((n for n in z.namelist() if n.endswith(".data/scripts/uv")), None)
            if member is None:
                raise HearthNetError("internal", f"{wheel.name} holds no uv binary")
            (root / "tools").mkdir()
            (root / "tools" / "uv").write_bytes(z.read(member))
    (root / "tools" / "uv").chmod(0o755)
    return "tools/uv"


_SPEC = re.compile(r"^\s*(?P<base>[^\[\s=<>!~;]+)\s*(?:\[(?P<extras>[^\]]*)\])?")


def _own_extras(specs: list[str]) -> list[str]:
    """The extras the specs name for HearthNet itself (by name, or a checkout path)."""
    named: set[str] = set()
    for spec in specs:
        m = _SPEC.match(spec)
        if m and m["extras"] and (m["base"].lower() == "hearthnet" or Path(m["base"]).is_dir()):
            named |= {e.strip() for e in m["extras"].split(",") if e.strip()}
    return sorted(named)


def _wheel_sets(dest: Path, specs: list[str], no_deps: bool) -> dict[str, list[str]]:
    """Which wheels `pip install hearthnet[extras]` takes from dest alone, for every subset of
    the extras the bundle was built with ("" is the base package). Keys: the extras, sorted, joined by ','."""
    own = sorted(dest.glob("hearthnet-*.whl"))
    if not own:
        return {}
    version = own[0].name.split("-")[1]
    extras = _own_extras(specs)
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    sets: dict[str, list[str]] = {}
    for n in range(len(extras) + 1):
        for combo in itertools.combinations(extras, n):
            req = f"hearthnet[{','.join(combo)}]=={version}" if combo else f"hearthnet=={version}"
            report = _pip(["install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-", "--no-index", "--find-links", str(dest),
                           *(["--no-deps"] if no_deps else []), req], f"the bundle's wheels do not install {req} on their own", env)
            urls = [i["download_info"]["url"] for i in json.loads(report)["install"]]
            sets[",".join(combo)] = sorted(Path(urllib.parse.unquote(urllib.parse.urlparse(u).path)).name for u in urls)
    return sets


def project_spec(extras: str = "llm,embed") -> str:
    """What `pip wheel` builds HearthNet itself from: this checkout when the package runs from
    one (an editable install), else the installed version from the index the controller reaches."""
    import importlib.metadata

    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "pyproject.toml").is_file() and (checkout / "hearthnet" / "__init__.py").is_file():
        return f"{checkout}[{extras}]"
    return f"hearthnet[{extras}]=={importlib.metadata.version('hearthnet')}"


def _sums(root: Path) -> str:
    lines = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != SUMS:
            lines.append(f"{sha256_of(p)}  {p.relative_to(root).as_posix()}")
    return "\n".join(lines) + "\n"


def write_bundle(out: Path, *, locks: list[Path], plans: list[Path], plan_root: Path | None = None, wheels: list[str] | None = None,
                 no_deps: bool = False, models_dir: Path | None, mirrors: list[Path] | None = None,
                 step: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Build the bundle at `out` (replacing an earlier one only when the new one is whole)."""
    out = Path(out)
    started = time.monotonic()
    lock = _merged_lock(locks)
    sources = []
    for m in lock.models:
        if m.sources and all(s.get("kind") == "package" for s in m.sources):
            continue  # shipped inside a Python package: it travels in that package's wheel, not twice
        p = find_local(m.sources, m.file, [d for d in (models_dir, *(mirrors or [])) if d is not None])
        if p is None:
            raise HearthNetError("not_found", f"model {m.id}: not on this machine (run hearthnet models fetch first, or give --mirror DIR)")
        sources.append((m, p))
    plan_docs = []
    for plan_path in plans:
        plan = corpora.load_plan(plan_path)
        plan_docs.append((plan, corpora.collect(plan, plan_root or plan_path.resolve().parent)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for m, p in sources:
            step(f"model {m.id}")
            copy_verified(m, p, tmp / "models")
        (tmp / "models.lock.json").write_text(json.dumps(lock.model_dump(), indent=2, sort_keys=True) + "\n")
        seen: dict[str, dict[str, Any]] = {}
        for plan, collected in plan_docs:
            for c, sc in zip(plan.corpora, collected, strict=True):
                step(f"corpus {c.corpus}")
                d = tmp / "corpora" / c.corpus
                d.mkdir(parents=True, exist_ok=True)
                for i, f in enumerate(sc.files):
                    shutil.copyfile(f, d / f"{i:04d}-{f.name}")
                seen[c.corpus] = {**c.model_dump(), "sources": [{"path": f"corpora/{c.corpus}", "extensions": sorted({f.suffix.lower() for f in sc.files}) or [".md"],
                                                                  "max_bytes": max([s.max_bytes for s in c.sources] or [1])}] if sc.files else []}
        (tmp / "corpora.json").write_text(json.dumps({"version": 1, "corpora": [seen[k] for k in sorted(seen)]}, indent=2, sort_keys=True) + "\n")
        sets: dict[str, list[str]] = {}
        installer = ""
        if wheels:
            step("wheels")
            (tmp / "wheels").mkdir()
            _wheels(tmp / "wheels", wheels, no_deps, step)
            step("installer")
            installer = _installer(tmp)
            step("wheel sets")
            sets = _wheel_sets(tmp / "wheels", wheels, no_deps)
        (tmp / WHEEL_SETS).write_text(json.dumps({"version": 1, "installer": installer, "sets": sets}, indent=2, sort_keys=True) + "\n")
        step("checksums")
        (tmp / SUMS).write_text(_sums(tmp))
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise HearthNetError("storage_error", f"cannot write the bundle {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"path": str(out), "models": [m.id for m, _ in sources], "packaged_models": [m.id for m in lock.models if m not in [x for x, _ in sources]],
            "corpora": sorted(seen), "wheels": sorted(f.name for f in (out / "wheels").iterdir()) if (out / "wheels").is_dir() else [],
            "wheel_sets": {k: len(v) for k, v in sets.items()}, "installer": installer,
            "bytes": sum(f.stat().st_size for f in out.rglob("*") if f.is_file()), "seconds": round(time.monotonic() - started, 1)}


def site_inputs(site_file: Path, hardware_file: Path | None, into: Path) -> tuple[list[Path], list[Path]]:
    """Render every host of a site (recorded facts, else `hardware_file`) into `into`/<host>/ and
    return their locks and corpus plans: what a bundle for the whole village must carry."""
    from hearthnet.provision import render
    from hearthnet.provision.hardware import load_facts
    from hearthnet.provision.site import load_site

    site = load_site(site_file)
    missing = sorted(h for h, v in site.hosts.items() if not v.hardware)
    if missing and hardware_file is None:
        raise HearthNetError("bad_request", f"hosts without recorded hardware ({', '.join(missing)}): give --hardware FACTS for them "
                                            "(the bundle carries the models their tier pins)")
    rendered = render.site_files(site, site_file, list(site.hosts), lambda recorded: load_facts(recorded or hardware_file))  # type: ignore[arg-type]
    locks, plans = [], []
    for host, files in rendered.items():
        (into / host).mkdir(parents=True, exist_ok=True)
        for name, target in (("models.lock.json", locks), ("corpora.json", plans)):
            (into / host / name).write_bytes(files[name])
            target.append(into / host / name)
    return locks, plans


def verify_bundle(root: Path) -> int:
    """Every file SHA256SUMS lists is there and matches, and there is nothing it does not list.
    Returns the number of files; raises db_corrupt (or not_found) otherwise."""
    root = Path(root)
    sums = root / SUMS
    if not sums.is_file():
        raise HearthNetError("not_found", f"{root}: not a bundle (no {SUMS})")
    listed: dict[str, str] = {}
    for n, line in enumerate(sums.read_text("utf-8").splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or rel.startswith("/") or ".." in Path(rel).parts:
            raise HearthNetError("db_corrupt", f"{sums}:{n}: not a checksum line")
        listed[rel] = digest
    bad = [rel for rel, d in listed.items() if not (root / rel).is_file() or sha256_of(root / rel) != d]
    extra = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != SUMS and p.relative_to(root).as_posix() not in listed]
    if bad or extra:
        raise HearthNetError("db_corrupt", f"bundle {root} fails its checksums: " + "; ".join(
            ([f"missing or changed: {', '.join(sorted(bad))}"] if bad else []) + ([f"not listed: {', '.join(sorted(extra))}"] if extra else [])))
    return len(listed)


__all__ = ["SUMS", "WHEEL_SETS", "project_spec", "site_inputs", "verify_bundle", "write_bundle"]
