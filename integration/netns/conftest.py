from __future__ import annotations

import pytest

from harness import NetnsLab, available  # type: ignore[import-not-found]

REASON = available()


@pytest.fixture
def lab_factory(tmp_path):
    if REASON:
        pytest.skip(f"netns harness: {REASON}")
    labs: list[NetnsLab] = []

    def make(n: int) -> NetnsLab:
        lab = NetnsLab(tmp_path / f"lab{len(labs)}", n)
        labs.append(lab)
        lab.up()
        return lab

    yield make
    for lab in labs:
        lab.close()
