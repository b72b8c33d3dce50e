"""A site's own model index: `models add --index` makes it, the renderer pins from it and ships
it beside the config, the node resolves model ids through it, the bundle finds the files in the
site's mirrors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hearthnet import config
from hearthnet.config import LlmBackendConfig
from hearthnet.errors import HearthNetError
from hearthnet.provision import models, render, site
from hearthnet.provision.render import INDEX_FILE

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"


def hn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hearthnet", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def village(tmp_path):
    """A site whose anchor runs a model the package's index does not know, from the site's mirror."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny-site.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 64)
    p = hn("models", "add", str(mirror / "tiny-site.gguf"), "--id", "tiny-site", "--family", "tiny", "--license", "MIT", "--quantisation", "q4_1",
           "--context", "2048", "--provenance", "made for this test", "--index", str(tmp_path / "models" / "index.json"), "--json")
    assert p.returncode == 0, p.stderr
    doc = {
        "community": {"name": "Indexdorf"}, "bootstrap": ["https://10.0.0.1:7080"],
        "models": {"index": "models/index.json", "mirrors": ["mirror"]},
        "hosts": {"mill": {"profile": "anchor", "llm": {"backend": "llama_cpp", "model": "tiny-site"}, "services": {"rag": False, "embedding": False}}},
    }
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


def test_models_add_starts_a_missing_site_index_from_the_packages(village):
    ids = {m["id"] for m in json.loads((village / "models" / "index.json").read_text())["models"]}
    assert ids == set(models.load_index()) | {"tiny-site"}


def test_render_pins_from_the_site_index_and_ships_it(village):
    s = site.load_site(village / "site.yaml")
    files = render.site_files(s, village / "site.yaml", ["mill"], render.Facts(FIXTURES / "laptop-8gb-nogpu.json"),
                              install=render.Install(config_dir="/etc/hearthnet/rendered"))["mill"]
    assert files[INDEX_FILE] == (village / "models" / "index.json").read_bytes()
    lock = json.loads(files["models.lock.json"])
    assert [m["id"] for m in lock["models"]] == ["tiny-site"] and lock["models"][0]["sources"][0] == {"kind": "mirror", "path": "tiny-site.gguf"}
    receipt = json.loads(files["receipt.json"])
    assert INDEX_FILE in receipt["outputs"]
    out = village / "rendered"
    assert render.write(out, files)
    cfg = config.load(village / "data", out / "hearthnet.toml")
    assert cfg.models.index == Path("/etc/hearthnet/rendered") / INDEX_FILE


def test_without_a_site_index_nothing_extra_is_rendered(village):
    doc = yaml.safe_load((village / "site.yaml").read_text())
    del doc["models"]["index"]
    doc["hosts"]["mill"].pop("llm")
    (village / "site.yaml").write_text(yaml.safe_dump(doc))
    files = render.site_files(site.load_site(village / "site.yaml"), village / "site.yaml", ["mill"], render.Facts(FIXTURES / "laptop-8gb-nogpu.json"))["mill"]
    assert set(files) == set(render.FILES) and b"[models]" not in files["hearthnet.toml"]


def test_a_broken_or_outside_site_index_is_one_clear_error(village):
    (village / "models" / "index.json").write_text('{"version": 1, "models": [{"id": 3}]}')
    with pytest.raises(HearthNetError) as e:
        render.site_files(site.load_site(village / "site.yaml"), village / "site.yaml", ["mill"], render.Facts(FIXTURES / "laptop-8gb-nogpu.json"))
    assert e.value.code == "config_invalid" and "index.json" in str(e.value)
    doc = yaml.safe_load((village / "site.yaml").read_text())
    doc["models"]["index"] = "../elsewhere/index.json"
    (village / "site.yaml").write_text(yaml.safe_dump(doc))
    p = hn("render-profile", "--site", str(village / "site.yaml"), "--host", "mill", "--hardware", str(FIXTURES / "laptop-8gb-nogpu.json"),
           "--out", str(village / "out"))
    assert p.returncode != 0 and "config_invalid" in p.stderr and "inside the site" in p.stderr and "Traceback" not in p.stderr
    assert not (village / "out").exists()


def test_the_node_resolves_model_ids_through_the_configured_index(village):
    from hearthnet.services.llm.service import build_backend

    index = village / "models" / "index.json"
    with pytest.raises(HearthNetError):
        build_backend(LlmBackendConfig(name="llama_cpp", model="tiny-site"), [village / "mirror"])  # the package's index: unknown
    b = build_backend(LlmBackendConfig(name="llama_cpp", model="tiny-site"), [village / "mirror"], index)
    assert (b.model.name, b.model.quant, b.model.ctx_max) == ("tiny-site", "q4_1", 2048)


def test_the_bundle_takes_model_files_from_the_sites_mirrors(village):
    p = hn("models", "bundle", "--site", str(village / "site.yaml"), "--hardware", str(FIXTURES / "laptop-8gb-nogpu.json"), "--no-wheels",
           "--out", str(village / "bundle"), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["models"] == ["tiny-site"]
    assert (village / "bundle" / "models" / "tiny-site.gguf").read_bytes() == (village / "mirror" / "tiny-site.gguf").read_bytes()
