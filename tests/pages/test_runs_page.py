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
