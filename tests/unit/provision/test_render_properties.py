"""Property tests of the renderer: random valid sites and boxes render to identical bytes twice (and
facts outside the rounded subset change nothing); an invalid input anywhere leaves a rendered
directory byte-identical."""

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hearthnet.errors import HearthNetError
from hearthnet.provision import render
from hearthnet.provision.site import load_site

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERVICES = ["llm", "embedding", "rag", "file", "market", "chat", "ui"]

gpus = st.lists(st.fixed_dictionaries({"vendor": st.just("nvidia"), "model": st.sampled_from(["RTX 3060", "RTX 4090", "A4000"]),
                                       "vram_gb": st.floats(1, 80).map(lambda x: round(x, 1)), "source": st.just("nvidia-smi")}), max_size=2)
facts = st.fixed_dictionaries({
    "schema_version": st.just(1), "arch": st.sampled_from(["x86_64", "aarch64"]), "os": st.just("Linux 6.1"),
    "cpu": st.fixed_dictionaries({"model": st.sampled_from(["Intel N100", "Ryzen 7 5800U", "BCM2835"]), "cores": st.integers(1, 64),
                                  "threads": st.integers(1, 128)}),
    "ram_gb": st.floats(0.5, 256).map(lambda x: round(x, 2)), "gpus": gpus,
    "disk_free_gb": st.floats(0, 4000).map(lambda x: round(x, 1)), "raspberry_pi": st.none(), "interfaces": st.just([]), "unknown": st.just([]),
})


def _services():
    # Valid overrides only: the embedder off takes RAG with it (that conflict is a breakage below).
    return st.dictionaries(st.sampled_from(SERVICES), st.booleans(), max_size=4).map(
        lambda s: {**s, "rag": False} if s.get("embedding") is False else ({**s, "embedding": True} if s.get("rag") else s))


host = st.fixed_dictionaries({"profile": st.sampled_from(["hearth", "spark", "bridge"]), "mode": st.sampled_from(["dev", "prod"]),
                              "services": _services()})
names = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
sites = st.fixed_dictionaries({
    "community": st.fixed_dictionaries({"name": st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40)}),
    "bootstrap": st.just(["https://anchor.local:7080"]),
    "hosts": st.dictionaries(names, host, min_size=0, max_size=4),
    "anchor_mode": st.sampled_from(["dev", "prod"]),
})


def _materialise(root: Path, doc: dict, hw: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "hw.json").write_text(json.dumps(hw))
    hosts = {"anchor": {"profile": "anchor", "mode": doc["anchor_mode"], "hardware": "hw.json"}}
    for n, h in doc["hosts"].items():
        if n != "anchor":
            hosts[n] = {**h, "hardware": "hw.json"}
    site = {"community": doc["community"], "bootstrap": doc["bootstrap"], "hosts": hosts}
    p = root / "site.yaml"
    p.write_text(yaml.safe_dump(site, allow_unicode=True))
    return p


def _render_all(site_file: Path) -> dict[str, dict[str, bytes]]:
    site = load_site(site_file)
    return render.site_files(site, site_file, list(site.hosts), render.Facts())


def _write_all(site_file: Path, out: Path) -> None:
    """What `render-profile --site --all` does: every host rendered before any is written."""
    for name, files in _render_all(site_file).items():
        render.write(out / name, files)


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@SETTINGS
@given(sites, facts, st.floats(0, 4000))
def test_valid_sites_render_identically_twice(doc, hw, other_disk):
    with tempfile.TemporaryDirectory() as t:
        site_file = _materialise(Path(t) / "a", doc, hw)
        first = _render_all(site_file)
        assert _render_all(site_file) == first
        # Free disk space (and other minute-to-minute facts) never reach the output bytes.
        moved = _materialise(Path(t) / "b", doc, {**hw, "disk_free_gb": round(other_disk, 1),
                                                  "interfaces": [{"name": "eth9", "up": True, "addresses": ["10.9.9.9/8"]}]})
        second = _render_all(moved)
        assert {h: {k: v for k, v in f.items() if k != "receipt.json"} for h, f in second.items()} == \
               {h: {k: v for k, v in f.items() if k != "receipt.json"} for h, f in first.items()}
        assert all(json.loads(second[h]["receipt.json"])["outputs"] == json.loads(first[h]["receipt.json"])["outputs"] for h in first)


# One invalid change anywhere: (where, how)
BREAKAGES = {
    "unknown profile": lambda s: s["hosts"]["anchor"].update(profile="castle"),
    "unknown mode": lambda s: s["hosts"]["anchor"].update(mode="staging"),
    "plain-http bootstrap": lambda s: s.update(bootstrap=["http://anchor.local:7080"]),
    "empty community name": lambda s: s["community"].update(name=""),
    "two anchors": lambda s: s["hosts"].update(second={"profile": "anchor"}),
    "bad host name": lambda s: s["hosts"].update({"Bad_Name": {"profile": "spark"}}),
    "service not a bool": lambda s: s["hosts"]["anchor"].update(services={"llm": "maybe"}),
    "unknown key": lambda s: s.update(colour="blue"),
    "rag without embedder": lambda s: s["hosts"]["anchor"].update(services={"rag": True, "embedding": False}),
    "unknown model": lambda s: s["hosts"]["anchor"].update(llm={"backend": "llama_cpp", "model": "llama-9000b"}),
    "missing hardware file": lambda s: s["hosts"]["anchor"].update(hardware="nowhere.json"),
    "corrupt hardware file": lambda s: s["hosts"]["anchor"].update(hardware="site.yaml"),
    "not a mapping": lambda s: s.clear(),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=sites, hw=facts)
def test_an_invalid_input_leaves_the_rendered_directory_byte_identical(doc, hw, breakage):
    with tempfile.TemporaryDirectory() as t:
        site_file = _materialise(Path(t), doc, hw)
        out = Path(t) / "out"
        _write_all(site_file, out)
        before = _snapshot(out)
        broken = yaml.safe_load(site_file.read_text())
        BREAKAGES[breakage](broken)
        site_file.write_text(yaml.safe_dump(broken, allow_unicode=True) if broken else "[]\n")
        try:
            _write_all(site_file, out)
        except HearthNetError as exc:
            assert exc.code in ("config_invalid", "bad_request", "not_found"), exc.one_line()
        else:
            raise AssertionError(f"{breakage} rendered")
        assert _snapshot(out) == before
        assert sorted(p.name for p in Path(t).iterdir()) == ["hw.json", "out", "site.yaml"]  # no temporary directory left behind
