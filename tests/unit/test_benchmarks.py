"""Each benchmark runs once, tiny, to prove it works and prints the agreed JSON lines.

No wall-clock figure is asserted: benchmarks measure, tests check behaviour.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
KEYS = {"bench", "case", "metric", "value", "unit", "baseline_name", "baseline", "ratio", "goal"}


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("bench_*.py")))
def test_benchmark_runs_and_prints_json_lines(script):
    p = subprocess.run([sys.executable, str(BENCH / script), "--quick"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert KEYS <= set(line)
        assert line["bench"] == script.removeprefix("bench_").removesuffix(".py")
        assert line["value"] > 0 and line["baseline"] > 0
        assert line["ratio"] == pytest.approx(line["value"] / line["baseline"], rel=1e-2)
