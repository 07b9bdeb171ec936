"""Ready before the bell (tiny models): a prepared demo replays at once when its page's button is pressed, says
when it was prepared and can run live instead; a stale one runs again; a failing demo is reported and the others go
on; a second prepare joins the first; Home shows readiness."""
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labs.runs import jobs, provenance
from ui import prepare

PAGES = Path(__file__).resolve().parents[2] / "pages"


@pytest.fixture(scope="module")
def prepared():
    mp = pytest.MonkeyPatch()
    mp.setenv("LLMLAB_TINY_MODELS", "1")
    lines = []
    status = prepare.prepare(["dpo.train"], echo=lines.append)
    yield status, lines
    mp.undo()


def test_prepare_runs_the_page_default_and_reports_it(prepared):
    status, lines = prepared
    entry = status["demos"]["dpo.train"]
    assert entry["state"] == "ready" and entry["runs"] and entry["seconds"] > 0, entry
    assert 0 < entry["run_seconds"] <= entry["seconds"], entry  # the runs alone, without opening the page
    assert all(jobs.get(i).status == jobs.DONE for i in entry["runs"])
    assert any(line.startswith("ready") and "dpo.train" in line for line in lines)
    assert "dpo.train" in prepare.table(status) and prepare.running_pid() is None
    row = next(r for r in prepare.readiness() if r["demo"] == prepare.BY_KEY["dpo.train"].title)
    assert row["state"] == "ready" and row["prepared at"]


def test_pressing_the_default_button_replays_the_prepared_run_then_runs_live_on_request(prepared, monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    prepared_id = prepared[0]["demos"]["dpo.train"]["runs"][0]
    at = AppTest.from_file(str(PAGES / "30_Preference_tuning.py"), default_timeout=120)
    at.run()
    t0 = time.perf_counter()
    at.button(key="dpo_train").click().run()
    seconds = time.perf_counter() - t0
    assert not at.exception, at.exception
    assert at.session_state["dpo_run_id"] == prepared_id and jobs.get(prepared_id).replayed
    assert seconds < 5, seconds  # no training: the stored result (the browser test times the click itself)
    assert any("Prepared at" in c.value for c in at.caption)
    assert any("(C8)" in m.value for m in at.markdown)  # the claim box reads the replayed run
    live = [b for b in at.button if b.label == "Run it live instead"]
    assert live
    live[0].click().run()
    run = jobs.get(prepared_id)
    assert not run.replayed and (run.active or run.status == jobs.DONE)
    jobs.wait(prepared_id, timeout=300)


def test_a_stale_prepared_run_is_shown_stale_and_runs_again(prepared, monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    monkeypatch.setattr(provenance, "code_version", lambda: "a-newer-version")
    row = next(r for r in prepare.readiness() if r["demo"] == prepare.BY_KEY["dpo.train"].title)
    assert row["state"] == "stale" and "another version of the labs code" in row["note"]
    at = AppTest.from_file(str(PAGES / "30_Preference_tuning.py"), default_timeout=120)
    at.run()
    at.button(key="dpo_train").click().run()
    run_id = at.session_state["dpo_run_id"]
    assert not jobs.get(run_id).replayed  # trained again, not replayed as if current
    jobs.stop(run_id)
    jobs.wait(run_id, timeout=120)


def test_a_failing_demo_is_reported_and_the_others_go_on(monkeypatch):
    broken = [prepare.Demo(f"broken.{i}", "30_Preference_tuning.py", f"Broken {i}", ("no_such_button",))
              for i in (1, 2)]
    monkeypatch.setattr(prepare, "BY_KEY", {d.key: d for d in broken})
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    status = prepare.prepare(["broken.1", "broken.2"], echo=lambda line: None)
    for d in broken:
        entry = status["demos"][d.key]
        assert entry["state"] == "failed" and "no button 'no_such_button'" in entry["reason"]
    assert "failed" in prepare.table(status)


def test_a_second_prepare_joins_the_first(monkeypatch):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    try:
        prepare._lock_path().write_text(str(other.pid))
        lines = []
        t0 = time.perf_counter()
        prepare.prepare(["dpo.train"], echo=lines.append)
        assert "already going" in lines[0] and time.perf_counter() - t0 >= 1  # followed it, ran nothing itself
    finally:
        other.wait()
        prepare._lock_path().unlink(missing_ok=True)


def test_home_shows_readiness(prepared, monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert any("demos replay at once" in c.value for c in at.caption)
    assert at.button(key="home_prepare").label == "Prepare for class"
