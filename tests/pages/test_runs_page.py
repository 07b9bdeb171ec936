import dataclasses

from streamlit.testing.v1 import AppTest

from labs.runs import jobs
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    lr: float = 0.1
    seed: int = 0


def demo(ctx):
    for step in range(1, 4):
        ctx.log(step=step, loss=ctx.config.lr / step)


def test_runs_page_overlays_and_diffs(monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    a = jobs.wait(jobs.submit(DemoConfig(lr=0.1), demo))
    b = jobs.wait(jobs.submit(DemoConfig(lr=0.3), demo))
    at = AppTest.from_file(str(ROOT / "pages" / "90_Runs.py"), default_timeout=60).run()
    assert not at.exception
    at.selectbox(key="runs_kind").set_value("DemoConfig").run()
    at.multiselect(key="runs_compare").set_value([a.id, b.id]).run()
    assert not at.exception
    assert at.selectbox(key="runs_metric").value == "loss"
    diff = at.dataframe[1].value
    assert list(diff["setting"]) == ["lr"]


def test_app_on_the_database_queue_lists_its_runs_and_refuses_to_half_start(monkeypatch, tmp_path):
    """With LLMLAB_RUN_QUEUE=db the Runs page lists the database's runs and where each ran; a database that cannot
    be reached stops the app at once with a message naming LLMLAB_DB_URL (no page, no traceback)."""
    import functools

    from labs.runs import jobs, shared, worker
    from tests.labs.queue_steps import CountConfig, count_steps

    url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    monkeypatch.setenv("LLMLAB_RUN_QUEUE", "db")
    monkeypatch.setenv("LLMLAB_APP_WORKER", "0")
    monkeypatch.setenv("LLMLAB_DB_URL", url)
    monkeypatch.setenv("LLMLAB_ARTIFACTS", str(tmp_path / "shared"))
    jobs.reset_manager()
    try:
        assert isinstance(jobs.manager(), shared.SharedJobManager)
        run_id = jobs.submit(CountConfig(tag="db"), functools.partial(count_steps, lm=None))
        worker.Worker(url, name="gpu-box:42").run_forever(max_runs=1)
        at = AppTest.from_file(str(ROOT / "pages" / "90_Runs.py"), default_timeout=120).run()
        assert not at.exception
        table = at.dataframe[0].value
        row = table[table["id"] == run_id].iloc[0]
        assert row["status"] == "done" and row["ran on"] == "gpu-box:42"
        jobs.reset_manager()
        monkeypatch.setenv("LLMLAB_DB_URL", "postgresql://llmlab:pw@127.0.0.1:1/nowhere")  # loopback, nothing there
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        assert not at.exception and not at.metric  # the home page did not start
        assert any("cannot start" in e.value and "LLMLAB_DB_URL" in e.value and "pw" not in e.value for e in at.error)
    finally:  # the next tests get this process's own queue again
        for name in ("LLMLAB_RUN_QUEUE", "LLMLAB_DB_URL", "LLMLAB_ARTIFACTS"):
            monkeypatch.delenv(name, raising=False)
        jobs.reset_manager()
        jobs.manager()
