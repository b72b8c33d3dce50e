"""Fixtures for the VM tests: the cached image, and labs that are always torn down."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from image import build  # noqa: E402
from machine import Lab, have_tools  # noqa: E402
from playbook import have_ansible  # noqa: E402

REASON = have_tools() or have_ansible()


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (a CI timeout): unwind, so the fixtures below stop VMs and remove namespaces


signal.signal(signal.SIGTERM, _stop)


def _unavailable() -> None:
    if REASON:
        # In CI the README's test command installs what these need: missing there is a failure, not a skip.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"VM tests: {REASON}")


@pytest.fixture(scope="session")
def vm_image():
    if os.environ.get("HEARTHNET_VM_TESTS") == "0" and not os.environ.get("CI"):
        # A local shortcut only: the smoke test takes about half an hour under emulation.
        pytest.skip("HEARTHNET_VM_TESTS=0: VM tests skipped")
    _unavailable()
    return build(say=lambda s: print(s, flush=True))


@pytest.fixture
def lab_factory(vm_image, tmp_path):
    labs: list[Lab] = []

    def make(name: str = "lab") -> Lab:
        lab = Lab(vm_image, tmp_path / name, ns=f"hnvm{os.getpid()}x{len(labs)}")
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.close()
