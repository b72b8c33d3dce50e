"""Implication rules: each profile against the recorded boxes, host overrides, and conflicts naming both sources."""

import pytest

from hearthnet.errors import HearthNetError
from hearthnet.provision import hardware, profiles, site
from hearthnet.provision.effective import effective

BOXES = profiles.PROFILES_DIR.parent / "tests" / "fixtures" / "hardware"
SITE = site.load_site(profiles.PROFILES_DIR / "examples" / "site.yaml")


def box(name):
    return hardware.load_facts(BOXES / f"{name}.json")


def test_hearth_on_a_mini_pc_pins_its_gguf_and_embedder():
    e = effective("hearth", box("minipc-16gb"), site=SITE, host="kitchen")
    assert e.values["llm"] == {"backend": "llama_cpp", "model": "smollm2-135m-instruct-q4_1"}
    assert e.values["models.pinned"] == ["all-minilm-l6-v2", "smollm2-135m-instruct-q4_1"] and e.values["system_services"] == []
    assert "llm.by_tier.cpu" in e.sources["llm"] and "services.rag" in e.sources["models.pinned"]


def test_anchor_on_a_gpu_box_runs_ollama():
    e = effective("anchor", box("gpu-24gb"))
    assert e.values["llm"]["backend"] == "ollama" and e.values["system_services"] == ["ollama"]
    assert e.values["models.pinned"] == ["all-minilm-l6-v2"]  # no GGUF for an ollama tag


def test_a_small_spark_has_no_local_llm():
    e = effective("spark", box("pi4-4gb"))
    assert e.values["llm"] is None and "calls go to the mesh" in e.sources["llm"] and e.values["models.pinned"] == []


def test_bridge_brings_probes_and_internet_backends():
    e = effective("bridge", box("laptop-8gb-nogpu"))
    assert e.values["emergency.probes"] and {c["backend"] for c in e.values["llm.internet"]} == {"anthropic_api", "nemotron"}


def test_a_host_override_swaps_the_backend_and_its_implications():
    s = SITE.model_copy(deep=True)
    s.hosts["kitchen"].llm = profiles.LlmChoice(backend="ollama", model="qwen2.5:7b")
    e = effective("hearth", box("minipc-16gb"), site=s, host="kitchen")
    assert e.sources["llm"] == "site hosts.kitchen.llm" and e.values["system_services"] == ["ollama"]
    assert "smollm2-135m-instruct-q4_1" not in e.values["models.pinned"]  # the pinned GGUF leaves the lock


def test_a_box_without_rag_keeps_no_corpus():
    s = SITE.model_copy(deep=True)
    s.hosts["mill-server"].services = {"rag": False, "embedding": False}
    e = effective("anchor", box("gpu-24gb"), site=s, host="mill-server")
    assert e.values["corpora"] == [] and "services.rag = false" in e.sources["corpora"] and "all-minilm-l6-v2" not in e.values["models.pinned"]
    assert effective("anchor", box("gpu-24gb"), site=SITE, host="mill-server").values["corpora"]  # with RAG it keeps its presets


def test_conflicts_name_both_sources():
    s = SITE.model_copy(deep=True)
    s.hosts["kitchen"].services = {"embedding": False}
    with pytest.raises(HearthNetError) as e:
        effective("hearth", box("minipc-16gb"), site=s, host="kitchen")
    assert e.value.code == "config_invalid" and e.value.details["sources"] == ["profile hearth services.rag", "site hosts.kitchen.services.embedding"]

    s.hosts["kitchen"].services = {}
    s.hosts["kitchen"].llm = profiles.LlmChoice(backend="llama_cpp", model="llama-9000b")
    with pytest.raises(HearthNetError) as e:
        effective("hearth", box("minipc-16gb"), site=s, host="kitchen")
    assert "not in the model index" in e.value.message and e.value.details["sources"][0] == "site hosts.kitchen.llm"

    s.hosts["kitchen"].llm = profiles.LlmChoice(backend="llama_cpp", model="all-minilm-l6-v2")
    with pytest.raises(HearthNetError) as e:
        effective("hearth", box("minipc-16gb"), site=s, host="kitchen")
    assert "embedding model, not llm" in e.value.message

    hearth = profiles.load_profile("hearth").model_copy(deep=True)
    hearth.corpora.append("recipes")
    s.hosts["kitchen"].llm = None
    with pytest.raises(HearthNetError) as e:
        effective(hearth, box("minipc-16gb"), site=s, host="kitchen")
    assert "'recipes'" in e.value.message and e.value.details["sources"] == [
        "profile hearth corpora", "site corpora (village_handbook) and the built-in presets"]

    bridge = profiles.load_profile("bridge").model_copy(deep=True)
    bridge.emergency.probes = []
    with pytest.raises(HearthNetError) as e:
        effective(bridge, box("laptop-8gb-nogpu"))
    assert "emergency probes" in e.value.message


@pytest.mark.parametrize("name", profiles.NAMES)
@pytest.mark.parametrize("facts", ["pi4-4gb", "laptop-8gb-nogpu", "minipc-16gb", "gpu-24gb"])
def test_every_profile_on_every_box_resolves(name, facts):
    e = effective(name, box(facts), site=SITE)
    assert set(e.values) == set(e.sources) and all(e.sources.values())


def test_profile_show_cli(tmp_path):
    import json
    import subprocess
    import sys

    site_file = profiles.PROFILES_DIR / "examples" / "site.yaml"
    p = subprocess.run([sys.executable, "-m", "hearthnet", "profile", "show", "--site", str(site_file), "--host", "shop-pi", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["profile"] == "spark" and out["hardware"]["tier"] == "micro" and out["values"]["llm"]["value"] is None
    p = subprocess.run([sys.executable, "-m", "hearthnet", "profile", "show", "--site", str(site_file), "--host", "nobody"], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and p.stderr.startswith("error[not_found]") and len(p.stderr.splitlines()) == 1
    p = subprocess.run([sys.executable, "-m", "hearthnet", "profile", "show", "hearth"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "services.rag" in p.stdout  # this box's detected hardware
