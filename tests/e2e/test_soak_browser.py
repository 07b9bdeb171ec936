"""The arena soak in real browsers (tiny models): 5 students battle and vote at once, round after round; every
battle becomes votable and every vote is stored (bench.bench_browser_class; with the real models it is the
10-student benchmark in the README)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("LLMLAB_SOAK_ROUNDS", "6"))


def test_five_students_battle_round_after_round(tmp_path):
    out = tmp_path / "soak.json"
    proc = subprocess.run([sys.executable, "-m", "bench.bench_browser_class", "--tiny", "--students", "5",
                           "--rounds", str(ROUNDS), "--stuck-after", "60", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert out.exists(), proc.stderr[-3000:]
    report = json.loads(out.read_text())
    shown = json.dumps(report, indent=1)  # all of it in the failure message (stuck battles' page text)
    assert report["errors"] == [] and report["page_exceptions"] == 0, shown
    assert report["stuck"] == 0 and report["votable"] == 5 * ROUNDS, shown
    assert report["votes_recorded"] == report["votes_cast"] == 5 * ROUNDS, shown
