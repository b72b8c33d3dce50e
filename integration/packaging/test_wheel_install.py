"""HearthNet installed from its wheel (not editable) finds its profiles, schemas, model index
and docs through importlib.resources, and renders every profile exactly as the checkout does."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "render"
BOXES = ROOT / "tests" / "fixtures" / "hardware"


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """A fresh venv holding only the built wheel; the dependencies come from the test's own
    site-packages through a path entry (its .pth files, the editable hook among them, are not run)."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (whl,) = (tmp / "dist").glob("hearthnet-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps", "--no-index", str(whl)],
                   check=True, capture_output=True, timeout=300)
    purelib = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    deps = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (purelib / "zz_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    return venv, whl


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HEARTHNET_HOME", "HEARTHNET_CONFIG")}
    return subprocess.run([str(venv / "bin" / "hearthnet"), *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_the_wheel_carries_its_data(wheel_venv):
    import zipfile

    _, whl = wheel_venv
    names = set(zipfile.ZipFile(whl).namelist())
    for want in ("hearthnet/profiles/anchor.yaml", "hearthnet/profiles/schemas/profile.schema.json", "hearthnet/profiles/models/index.json",
                 "hearthnet/profiles/models/index.schema.json", "hearthnet/docs/provisioning.md", "hearthnet/provision/templates/hearthnet.service.j2"):
        assert want in names, want
    assert not any(n.startswith(("tests/", "integration/", "profiles/", "docs/")) for n in names)


@pytest.mark.parametrize("profile,box", [("anchor", "gpu-24gb"), ("hearth", "minipc-16gb"), ("spark", "pi4-4gb"), ("bridge", "laptop-8gb-nogpu")])
def test_every_profile_renders_from_the_installed_wheel(wheel_venv, tmp_path, profile, box):
    venv, _ = wheel_venv
    where = subprocess.check_output([str(venv / "bin" / "python"), "-c", "import hearthnet.provision.profiles as p, hearthnet; print(hearthnet.__file__); print(p.PROFILES_DIR)"],
                                    text=True, cwd=tmp_path).split()
    assert all(str(venv) in w for w in where), where  # the installed copy, not this checkout
    out = tmp_path / "out"
    p = run(venv, "render-profile", "--profile", profile, "--hardware", str(BOXES / f"{box}.json"), "--out", str(out), "--json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"dir": str(out), "changed": True}
    golden = GOLDEN / f"{profile}-{box}"
    got, want = ({f.name: f.read_bytes() for f in d.iterdir()} for d in (out, golden))
    receipt, golden_receipt = json.loads(got.pop("receipt.json")), json.loads(want.pop("receipt.json"))
    assert got == want  # the same bytes as the checkout renders (tests/golden)
    assert receipt["outputs"] == golden_receipt["outputs"] and receipt["inputs"]["profile"] == golden_receipt["inputs"]["profile"]
    plan = json.loads((out / "corpora.json").read_text())
    if any(c["corpus"] == "hearthnet_docs" for c in plan["corpora"]):  # the docs corpus seeds from the installed copy
        code = ("import sys; from pathlib import Path; from hearthnet.provision import corpora as c; "
                "[print(f) for sc in c.collect(c.load_plan(Path(sys.argv[1])), Path(sys.argv[2])) if sc.corpus == 'hearthnet_docs' for f in sc.files]")
        files = subprocess.check_output([str(venv / "bin" / "python"), "-c", code, str(out / "corpora.json"), str(ROOT / "tests" / "rag")],
                                        text=True, cwd=tmp_path).split()
        assert files and all(f.startswith(str(venv)) and f.endswith(".md") for f in files)
        assert "provisioning.md" in {Path(f).name for f in files}
