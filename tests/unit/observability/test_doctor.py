"""Doctor checks that need no running node, on a real data dir and the real installed llama.cpp."""

import json
import platform

import pytest

from hearthnet.home import Home
from hearthnet.observability import doctor


def test_every_check_is_registered_once_and_reports_without_raising(tmp_path):
    names = doctor.names()
    assert len(names) == len(set(names)) and {"llm_worker", "llama_build", "keys_present"} <= set(names)
    h = Home.open(tmp_path / "node")
    h.init(create_community="Doctordorf")
    results = {r.name: r for r in doctor.run_all(h)}
    assert results["llm_worker"].ok and "not running" in results["llm_worker"].detail  # checked when it runs
    out = json.loads(doctor.render_json(list(results.values())))
    assert {c["name"] for c in out["checks"]} == set(names) and all("data" in c for c in out["checks"])


def test_llama_build_names_the_installed_builds_features():
    pytest.importorskip("llama_cpp")
    r = doctor.run_one("llama_build", Home.open("/nonexistent-doctor-dir"))
    assert r.ok and "portable build" in r.detail
    if platform.machine() == "x86_64":
        assert "AVX2 = 1" in r.data["system_info"]
