"""Test helper: evaluating the flake's Nix with Debian's nix-bin and the real nixpkgs `lib`.

nixpkgs cannot be downloaded here; its `lib` is found through HEARTHNET_NIXPKGS_LIB, else
../shared/nixpkgs-lib beside the checkout. Where neither (or nix-instantiate) exists the
tests skip, saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from hearthnet.provision.models import DEFAULT_INDEX

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "unit" / "nix"  # eval.nix and the stand-in


def nixpkgs_lib() -> Path | None:
    env = os.environ.get("HEARTHNET_NIXPKGS_LIB")
    for candidate in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "nixpkgs-lib"]:
        lib = candidate / "lib" if (candidate / "lib" / "default.nix").is_file() else candidate
        if (lib / "default.nix").is_file():
            return lib
    return None


class NixError(Exception):
    pass


class Nix:
    def __init__(self, lib: Path) -> None:
        self.lib = lib

    def eval(self, expr: str, **args: Any) -> Any:
        """`expr` (with `lib`, `root` and the given args bound, as JSON) evaluated strictly to JSON."""
        binds = "".join(f" {k} = builtins.fromJSON {json.dumps(json.dumps(v))};" for k, v in args.items())
        prog = f"let lib = import {self.lib}; root = {ROOT};{binds} in {expr}"
        p = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "--readonly-mode", "-E", prog],
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise NixError(p.stderr)
        return json.loads(p.stdout)

    def module(self, *modules: str, **args: Any) -> dict[str, Any]:
        """nix/module.nix evaluated with the stand-in for these configuration modules (Nix text)."""
        return self.eval(f"import {HERE}/eval.nix {{ inherit lib; modules = [ {' '.join(f'({m})' for m in modules)} ]; }}", **args)


def site_index(tmp_path: Path) -> Path:
    """A site's own index: the package's plus one model from an https upstream and one from a mirror only."""
    doc = json.loads(DEFAULT_INDEX.read_text())
    base = doc["models"][0]
    doc["models"] += [
        {**base, "id": "qwen-upstream", "file": "qwen.gguf", "sha256": "a" * 64, "size": 1234,
         "sources": [{"kind": "mirror", "path": "qwen.gguf"}, {"kind": "upstream", "url": "https://example.org/qwen.gguf"}]},
        {**base, "id": "handmade", "file": "handmade.gguf", "sha256": "b" * 64, "size": 99, "sources": [{"kind": "mirror", "path": "handmade.gguf"}]},
    ]
    p = tmp_path / "index.json"
    p.write_text(json.dumps(doc))
    return p
