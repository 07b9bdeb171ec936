"""The class-load benchmark runs end to end (tiny models, a few students): every vote cast is recorded and no
student's request fails. A smoke run, not a timed test: the speed figures come from `make bench`."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_classroom_bench_smoke(tmp_path):
    out = tmp_path / "classroom.json"
    env = dict(os.environ, LLMLAB_HOME=str(tmp_path / "home"))
    for _ in range(2):  # the second run finds the first run's votes in the store: it counts only its own
        subprocess.run([sys.executable, "-m", "bench.bench_classroom", "--tiny", "--students", "4", "--rounds", "2",
                        "--tokens", "12", "--train-examples", "16", "--out", str(out)],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    report = json.loads(out.read_text())
    assert report["errors"] == 0, report["error_examples"]
    assert report["votes_cast"] == 4 and report["votes_recorded"] == 4
    assert report["largest_batch"] >= 2  # the two answers of a battle share one batch
    assert report["training"]["step_s_alone"] > 0
