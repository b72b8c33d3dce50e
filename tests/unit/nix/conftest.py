"""The `nix` fixture: Debian's nix-instantiate with the real nixpkgs lib, or a skip that says why."""

from __future__ import annotations

import shutil

import pytest
from nixeval import Nix, nixpkgs_lib


@pytest.fixture(scope="session")
def nix() -> Nix:
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix-instantiate is not installed (Debian's nix-bin; README command 2 installs it)")
    lib = nixpkgs_lib()
    if lib is None:
        pytest.skip("no nixpkgs lib: set HEARTHNET_NIXPKGS_LIB or put it in ../shared/nixpkgs-lib beside the checkout")
    return Nix(lib)
