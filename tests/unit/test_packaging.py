"""pyproject.toml lists the packages by hand (profiles/ and docs/ ship as hearthnet.profiles and
hearthnet.docs): the list must be the tree, or a new subpackage would be missing from the wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_list_is_the_tree():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    tree = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "hearthnet").rglob("__init__.py") if "__pycache__" not in p.parts}
    mapped = {name: ROOT / d for name, d in cfg["package-dir"].items()}
    assert set(cfg["packages"]) == tree | set(mapped)
    assert all((d / "__init__.py").is_file() for d in mapped.values())
    # Every data file the renderer and the corpus presets read is matched by a package-data pattern.
    for name, d in mapped.items():
        patterns = cfg["package-data"][name]
        files = {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file() and p.suffix in (".yaml", ".json", ".md")}
        shipped = {f for f in files if any(Path(f).match(pat) and Path(f).parent == Path(pat).parent for pat in patterns)}
        assert files - shipped <= {"examples/site.yaml"}, files - shipped  # the example's paths point into a checkout


def test_the_version_is_one_number():
    """hearthnet.__version__ is a literal (no metadata lookup at start-up): it must be what pip installed."""
    import importlib.metadata

    import hearthnet

    assert hearthnet.__version__ == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert hearthnet.__version__ == importlib.metadata.version("hearthnet")
