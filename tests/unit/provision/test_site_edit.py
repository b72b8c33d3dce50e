"""`hearthnet site set`: comments survive, implications follow, a bad value changes nothing."""

import json
import subprocess
import sys

from hearthnet.provision import profiles

ROOT = profiles.PROFILES_DIR.parent


def _site(tmp_path):
    text = (profiles.PROFILES_DIR / "examples" / "site.yaml").read_text()
    text = text.replace("../../", f"{ROOT}/").replace("../models", f"{profiles.PROFILES_DIR}/models")
    f = tmp_path / "site.yaml"
    f.write_text(text)
    return f


def hn(*args):
    return subprocess.run([sys.executable, "-m", "hearthnet", *args], capture_output=True, text=True, timeout=120)


def snapshot(d):
    return {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}


def test_swap_a_backend_and_a_profile(tmp_path):
    site, out = _site(tmp_path), tmp_path / "out"
    fixed = ["--hardware", str(ROOT / "tests" / "fixtures" / "hardware" / "laptop-8gb-nogpu.json")]
    assert hn("render-profile", "--site", str(site), "--all", "--out", str(out), *fixed).returncode == 0
    assert "smollm2-135m-instruct-q4_1" in (out / "kitchen" / "models.lock.json").read_text()
    comments = [ln for ln in site.read_text().splitlines() if "#" in ln]
    p = hn("site", "set", "kitchen", "llm", '{backend: ollama, model: "qwen2.5:7b"}', "--site", str(site), "--out", str(out), *fixed)
    assert p.returncode == 0, p.stderr
    assert [ln for ln in site.read_text().splitlines() if "#" in ln] == comments  # every comment kept
    assert "Requires=ollama.service" in (out / "kitchen" / "hearthnet.service").read_text()
    assert "smollm2" not in (out / "kitchen" / "models.lock.json").read_text()  # the pinned GGUF left the lock
    receipt = json.loads((out / "kitchen" / "receipt.json").read_text())
    import hashlib

    assert receipt["inputs"]["site"] == hashlib.sha256(site.read_bytes()).hexdigest()
    assert hn("site", "set", "shop-pi", "profile", "hearth", "--site", str(site), "--out", str(out), *fixed).returncode == 0
    assert '"hearth"' in (out / "shop-pi" / "hearthnet.toml").read_text()


def test_an_invalid_result_changes_nothing(tmp_path):
    site, out = _site(tmp_path), tmp_path / "out"
    fixed = ["--hardware", str(ROOT / "tests" / "fixtures" / "hardware" / "minipc-16gb.json")]
    assert hn("render-profile", "--site", str(site), "--all", "--out", str(out), *fixed).returncode == 0
    before_site, before_out = site.read_bytes(), snapshot(out)
    for args, code in [(["kitchen", "profile", "castle"], "config_invalid"),
                       (["kitchen", "services", "{embedding: false}"], "config_invalid"),  # RAG without embeddings: a conflict
                       (["kitchen", "llm", "{backend: llama_cpp, model: no-such-model}"], "config_invalid"),
                       (["nobody", "profile", "hearth"], "not_found")]:
        p = hn("site", "set", *args, "--site", str(site), "--out", str(out), *fixed)
        assert p.returncode != 0 and p.stderr.startswith(f"error[{code}]"), (args, p.stderr)
        assert site.read_bytes() == before_site and snapshot(out) == before_out


def test_setting_the_same_value_again_changes_nothing(tmp_path):
    site, out = _site(tmp_path), tmp_path / "out"
    fixed = ["--hardware", str(ROOT / "tests" / "fixtures" / "hardware" / "minipc-16gb.json")]
    args = ["site", "set", "kitchen", "node_id", '"ed25519:' + "A" * 43 + '"', "--site", str(site), "--out", str(out), *fixed, "--json"]
    first = hn(*args)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["site_changed"] is True and json.loads(first.stdout)["hosts"]["mill-server"] is True
    mtime = site.stat().st_mtime_ns
    again = json.loads(hn(*args).stdout)
    assert again == {"site_changed": False, "hosts": {h: False for h in again["hosts"]}} and site.stat().st_mtime_ns == mtime
