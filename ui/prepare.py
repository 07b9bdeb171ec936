"""Ready before the bell: run every page's default experiment ahead of class, so that in class each replays at once.

`make prepare` (`python -m ui.prepare`) opens each page with Streamlit's AppTest at its defaults and presses the
page's own buttons: the very widgets, configs and step functions a click in class submits. The page's models are
converted and warmed on the way (and the fast runtime exported). The background runs go to the run store under
LLMLAB_HOME; afterwards the same click finds an identical finished run made by this code with these model files and
replays it (labs.runs.jobs: a stale, cut-short or corrupt run is run again instead).

Progress goes to LLMLAB_HOME/prepare.json, one line per demo (queued, running, ready in N s, failed with the
reason); the Home page reads it. A demo that fails is reported and the others go on; a second prepare started
while one runs joins it (follows its progress) instead of starting over; stopping keeps what finished.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from streamlit.testing.v1 import AppTest

from labs.core import settings
from labs.runs import jobs


ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "pages"


@dataclass(frozen=True)
class Demo:
    """One page's default experiment: the buttons to press, in order (the runs one press starts finish before
    the next press)."""
    key: str
    page: str  # file name under pages/
    title: str
    clicks: tuple[str, ...]


DEMOS = (
    Demo("mix.train", "10_Data_mixtures.py", "Data mixtures: the tiny GPT on the default mix", ("mix_train",)),
    Demo("mix.quality", "10_Data_mixtures.py", "Data mixtures: with and without the quality filter", ("mix_q_go",)),
    Demo("sft.train", "20_Fine_tuning.py", "Fine-tuning: instruction tuning (SFT)", ("sft_train",)),
    Demo("sft.sizes", "20_Fine_tuning.py", "Fine-tuning: the LIMA dataset-size sweep", ("sft_size_go",)),
    Demo("sft.classifier", "20_Fine_tuning.py", "Fine-tuning: classifiers, frozen vs trainable blocks",
         ("sft_clf_train",)),
    Demo("dpo.train", "30_Preference_tuning.py", "Preference tuning: DPO", ("dpo_train",)),
    Demo("lora.sweep", "40_LoRA_rank_explorer.py", "LoRA: the rank sweep", ("lora_sweep_go",)),
    Demo("lora.which", "40_LoRA_rank_explorer.py", "LoRA: W_q vs W_q+W_v at equal budget", ("lora_which_go",)),
    Demo("rag.eval", "50_RAG_playground.py", "RAG: evaluate the default configuration", ("rag_build", "rag_eval_run")),
    Demo("rag.claim", "50_RAG_playground.py", "RAG: RAG vs no-RAG", ("rag_build", "rag_claim_go")),
    Demo("attn.cost", "70_Linear_vs_full_attention.py", "Attention: cost vs sequence length", ("attn_cost_go",)),
    Demo("attn.pairs", "70_Linear_vs_full_attention.py", "Attention: the MQAR pairs sweep", ("attn_sw_go",)),
    Demo("attn.train", "70_Linear_vs_full_attention.py", "Attention: train on a synthetic task", ("attn_train",)),
    Demo("attn.palindrome", "70_Linear_vs_full_attention.py", "Attention: the palindrome sweep", ("attn_pal_go",)),
    Demo("attn.parity", "70_Linear_vs_full_attention.py", "Attention: the parity sweep", ("attn_par_go",)),
    Demo("eval.benchmark", "80_Evaluation.py", "Evaluation: the multiple-choice benchmark", ("eval_go",)),
    Demo("eval.generative", "80_Evaluation.py", "Evaluation: generative Q&A", ("eval_gen_go",)),
    Demo("eval.diversity", "80_Evaluation.py", "Evaluation: diversity", ("eval_div_go",)),
    Demo("eval.contamination", "80_Evaluation.py", "Evaluation: the contamination experiment", ("eval_c14_go",)),
)
BY_KEY = {d.key: d for d in DEMOS}
QUEUED, RUNNING, READY, FAILED = "queued", "running", "ready", "failed"


def status_path() -> Path:
    return settings.home() / "prepare.json"


def _lock_path() -> Path:
    return settings.home() / "prepare.lock"


def read_status() -> dict:
    """The last prepare's progress: {"pid", "started", "ended", "demos": {key: {state, seconds, reason, runs, ...}}}."""
    try:
        data = json.loads(status_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _alive(pid: int | None) -> bool:
    """The process runs (a zombie, one that ended but was not reaped by the app that started it, does not)."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    try:
        return Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal test above is all there is


def running_pid() -> int | None:
    """The process id of a prepare that is going now, or None."""
    try:
        pid = int(_lock_path().read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def stop() -> str:
    """Stop the prepare that is going (what finished stays prepared); returns what happened, in words."""
    pid = running_pid()
    if pid is None:
        return "No prepare is going."
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    return "Stopped: the demos that finished stay prepared."


def readiness() -> list[dict]:
    """One row per demo for the Home page: prepared and current (when), stale (why), failed, or not prepared."""
    demos = read_status().get("demos", {})
    rows = []
    for demo in DEMOS:
        entry = demos.get(demo.key, {})
        state, when, note = entry.get("state", ""), "", ""
        if state == READY:
            runs = [jobs.get(i) for i in entry.get("runs", [])]
            reasons = ["it was deleted" if r is None else jobs.stale_reason(r) for r in runs]
            problem = next((why for why in reasons if why), "")
            if problem or not runs:
                state, note = "stale", f"runs again when pressed: {problem or 'nothing was stored'}"
            else:
                when = time.strftime("%H:%M %d %b", time.localtime(entry.get("finished", 0)))
                note = f"replays at once (live: {entry.get('run_seconds') or entry.get('seconds', 0):.0f} s)"
        elif state == FAILED:
            note = entry.get("reason", "")
        elif state in (QUEUED, RUNNING):
            note = "being prepared now" if running_pid() else "the prepare that was doing it stopped"
        else:
            state, note = "not prepared", "runs live when pressed"
        rows.append({"demo": demo.title, "state": state, "prepared at": when, "note": note})
    return rows


@contextlib.contextmanager
def _recording():
    """The ids of every run submitted while inside (the page's own jobs.submit calls)."""
    manager, ids = jobs.manager(), []
    original = manager.submit

    def submit(*args, **kwargs):
        run_id = original(*args, **kwargs)
        ids.append(run_id)
        return run_id

    manager.submit = submit
    try:
        yield ids
    finally:
        manager.submit = original


def _page_problem(at: AppTest) -> str:
    if at.exception:
        return f"the page raised {at.exception[0].value}"
    errors = [e.value for e in at.error]
    return errors[0] if errors else ""


def run_demo(demo: Demo, app: AppTest | None = None, timeout: float = 1800.0) -> tuple[list[str], AppTest]:
    """Press the demo's buttons on its page (a fresh AppTest unless one for that page is handed in) and wait for
    the runs they start. Returns (run ids, the AppTest); raises RuntimeError with the reason when it fails."""
    if app is None:
        app = AppTest.from_file(str(PAGES / demo.page), default_timeout=timeout)
        app.run()
        if problem := _page_problem(app):
            raise RuntimeError(problem)
    started: list[str] = []
    for key in demo.clicks:
        buttons = [b for b in app.button if b.key == key]
        if not buttons:
            raise RuntimeError(f"the page shows no button {key!r} at its defaults")
        if buttons[0].disabled:
            raise RuntimeError(f"the button {buttons[0].label!r} is disabled at the page's defaults")
        with _recording() as ids:
            buttons[0].click().run()
        if problem := _page_problem(app):
            raise RuntimeError(problem)
        for run_id in ids:
            run = jobs.wait(run_id, timeout=timeout)
            if run.status != jobs.DONE:
                raise RuntimeError(f"{run.label}: {run.reason or run.status}")
        started += ids
        app.run()
    if not started:
        raise RuntimeError("pressing the page's button started no run")
    return started, app


def run_seconds(ids: list[str]) -> float:
    """Seconds from the first run's submission to the last run's end: what the click takes in class once the
    models are converted and loaded (a demo's own seconds also count opening the page and, for the first demo of a
    model, converting it and exporting the fast runtime)."""
    runs = [r for r in (jobs.get(i) for i in ids) if r is not None and r.ended]
    return round(max(r.ended for r in runs) - min(r.created for r in runs), 1) if runs else 0.0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # Stop from the Home page (SIGTERM) leaves like Ctrl-C: what finished is kept


def _write(status: dict) -> None:
    path = status_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=2))
    tmp.replace(path)


def prepare(keys: list[str] | None = None, timeout: float = 1800.0, echo=print) -> dict:
    """Prepare the demos (all, or those named), one after another; returns the final status. Joins a prepare
    already going instead of starting a second one."""
    pid = running_pid()
    if pid is not None and pid != os.getpid():
        echo(f"A prepare is already going (process {pid}): following it.")
        while running_pid() == pid:
            time.sleep(2)
        return read_status()
    demos = [BY_KEY[k] for k in keys] if keys else list(DEMOS)
    _lock_path().write_text(str(os.getpid()))
    with contextlib.suppress(ValueError):  # only the main thread may: `make prepare`, not a page
        signal.signal(signal.SIGTERM, _interrupt)
    status = read_status() if keys else {}
    status.update(pid=os.getpid(), started=time.time(), ended=None)
    status.setdefault("demos", {})
    for d in demos:
        status["demos"][d.key] = {"title": d.title, "page": d.page, "state": QUEUED}
    _write(status)
    apps: dict[str, AppTest] = {}
    try:
        for d in demos:
            entry = status["demos"][d.key]
            entry.update(state=RUNNING, since=time.time())
            _write(status)
            t0 = time.perf_counter()
            try:
                ids, apps[d.page] = run_demo(d, apps.get(d.page), timeout)
                entry.update(state=READY, runs=ids, seconds=round(time.perf_counter() - t0, 1),
                             run_seconds=run_seconds(ids), finished=time.time())
                echo(f"ready    {d.key:20} {entry['seconds']:7.1f} s  {d.title} (runs {entry['run_seconds']:.1f} s)")
            except Exception as exc:  # noqa: BLE001 - a demo that fails is reported; the others go on
                entry.update(state=FAILED, reason=str(exc)[:300], seconds=round(time.perf_counter() - t0, 1))
                echo(f"failed   {d.key:20} {entry['seconds']:7.1f} s  {entry['reason']}")
            _write(status)
    except KeyboardInterrupt:
        for run in jobs.active():
            jobs.stop(run.id)  # each stops within a step; finished runs stay in the store
        for e in status["demos"].values():
            if e.get("state") in (QUEUED, RUNNING):
                e.update(state=FAILED, reason="stopped before it finished")
        echo("Stopped: the demos that finished stay prepared.")
    finally:
        status["ended"] = time.time()
        _write(status)
        with contextlib.suppress(OSError):
            _lock_path().unlink()
    return status


def table(status: dict) -> str:
    """The demos with their state and seconds, as printed at the end of `make prepare`."""
    lines = [f"{'demo':22} {'state':8} {'seconds':>8} {'runs':>6}  what", "-" * 85]
    for key, e in status.get("demos", {}).items():
        runs = f"{e['run_seconds']:6.1f}" if e.get("run_seconds") else f"{'':6}"
        lines.append(f"{key:22} {e.get('state', ''):8} {e.get('seconds', 0):8.1f} {runs}  "
                     + (e.get("title", "") if e.get("state") != FAILED else e.get("reason", "")))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui.prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated demo keys (default: all); see --list")
    parser.add_argument("--list", action="store_true", help="list the demos and exit")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds one run may take (default 1800)")
    args = parser.parse_args(argv)
    if args.list:
        for d in DEMOS:
            print(f"{d.key:20} {d.page:32} {d.title}")
        return 0
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        parser.error(f"unknown demo(s) {', '.join(unknown)}; see --list")
    status = prepare(keys or None, args.timeout)
    print(table(status))
    return 1 if any(e.get("state") == FAILED for e in status.get("demos", {}).values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
