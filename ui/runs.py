"""Run widgets shared by pages: the live view of one run (run_panel), compare finished runs (overlay + config diff),
start a run, watch a group of runs.

Pages hand in runs (labs.runs.results.runs(ConfigClass)) and keys; these helpers only draw.
"""
from __future__ import annotations

import json
import time
from typing import Callable, Sequence

import pandas as pd
import streamlit as st

from labs.core import charts
from labs.runs import compare, jobs
from ui.common import friendly_errors, session_id


def numeric_metrics(runs: Sequence[jobs.Run]) -> list[str]:
    """Every numeric metric the runs logged (step and time left out), sorted."""
    return sorted({k for r in runs for m in r.metrics for k, v in m.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step", "time")})


def config_diff(a: jobs.Run, b: jobs.Run, labels: tuple[str, str] | None = None) -> None:
    """The settings (and seed) that differ between two runs, as a table; a caption when there are none."""
    diff = compare.diff_configs(a, b)
    if not diff:
        st.caption("Same config and seed.")
        return
    left, right = labels or (a.id, b.id)
    if left == right:
        left, right = f"{left} (1)", f"{right} (2)"
    st.dataframe(pd.DataFrame([{"setting": d["key"], left: json.dumps(d["a"], default=str),
                                right: json.dumps(d["b"], default=str)} for d in diff]),
                 hide_index=True, width="stretch")


def compare_runs(runs: Sequence[jobs.Run], *, key: str, label: Callable[[jobs.Run], str] = lambda r: r.id,
                 metrics: Sequence[str] | None = None, default_metric: str = "loss", smoothing: float = 0.0,
                 smoothing_key: str | None = None, metric_key: str | None = None, chart_key: str | None = None,
                 title: str | None = None, what: str = "Runs", diff_title: str = "",
                 help: str = "Overlay one curve from several runs; the table lists the settings that differ.",
                 metric_help: str = "The curve drawn for every chosen run.") -> list[jobs.Run]:
    """Pick runs (multiselect `key`), overlay one metric, and diff the configs of the first two picked.

    metrics: the curves offered (one = no selectbox); None = every numeric metric of the picked runs.
    smoothing_key: also offer a smoothing slider under that key. Returns the picked runs."""
    labelled = {label(r): r for r in runs}
    chosen = st.multiselect(what, list(labelled), default=list(labelled)[:2], key=key, help=help)
    picked = [labelled[c] for c in chosen if c in labelled]
    offered = list(metrics) if metrics is not None else numeric_metrics(picked)
    if picked and offered:
        metric = offered[0]
        if metrics is None or len(offered) > 1:
            index = offered.index(default_metric) if default_metric in offered else 0
            metric = st.selectbox("Curve" if metrics is not None else "Metric", offered, index=index,
                                  key=metric_key or f"{key}_metric", help=metric_help)
        if smoothing_key:
            smoothing = st.slider("Smoothing", 0.0, 0.99, smoothing, key=smoothing_key,
                                  help="Exponential moving average; the raw curve stays faint behind it.")
        st.plotly_chart(charts.overlay({label(r): r.metrics for r in picked}, metric,
                                       title=metric if title is None else title, smoothing=smoothing),
                        key=chart_key or f"{key}_chart")
    if len(picked) >= 2:
        if diff_title:
            st.subheader(diff_title)
        config_diff(picked[0], picked[1], (label(picked[0]), label(picked[1])))
    return picked


def start_button(label: str, *, key: str, current_id: str | None, help: str = "", disabled: bool = False,
                 busy: str = "A run is already going: wait for it or press Stop before starting another.") -> bool:
    """The primary button that starts a run: True when pressed and this page's previous run is not still going."""
    if not st.button(label, type="primary", key=key, disabled=disabled,
                     help=help or "Starts a background run; leaving the page does not stop it."):
        return False
    current = jobs.get(current_id) if current_id else None
    if current is not None and current.active:
        st.warning(busy)
        return False
    return True


def watch_group(ids: Sequence[str], draw: Callable[[list[jobs.Run]], None], *, key: str,
                every: float = 1.5) -> list[jobs.Run]:
    """Draw a group of runs (a sweep), refreshed every `every` s while any is active; one full rerun when the
    last one ends so the page's results section sees them finished. Returns the runs as they are now."""

    def _draw() -> None:
        runs = [r for r in (jobs.get(i) for i in ids) if r is not None]
        if runs and not any(r.active for r in runs):
            replay_note(runs, key=key)
        draw(runs)
        if not any(r.active for r in runs) and st.session_state.get(f"{key}_was_live"):
            st.session_state[f"{key}_was_live"] = False
            st.rerun()

    runs = [r for r in (jobs.get(i) for i in ids) if r is not None]
    if any(r.active for r in runs):
        st.session_state[f"{key}_was_live"] = True
        st.fragment(run_every=every)(_draw)()
    else:
        _draw()
    return [r for r in (jobs.get(i) for i in ids) if r is not None]


def last_time(config) -> str:
    """' — the last run of these settings here took N s' from the run store (identical config and seed, finished),
    or '' when there is none: a measured time on this machine instead of a typed-in estimate."""
    run = jobs.get(jobs.run_id_of(config))
    if run is None or run.status != jobs.DONE or not run.started or not run.ended:
        return ""
    return f" — the last run of these settings here took {run.ended - run.started:.0f} s"


def replay_note(runs: Sequence[jobs.Run], *, key: str, column=None) -> None:
    """Say that these finished runs are stored results replayed (made ahead, e.g. by `make prepare`), when they
    were made, and offer to run them live instead."""
    replayed = [r for r in runs if r.replayed and r.status == jobs.DONE]
    if not replayed:
        return
    when = time.strftime("%H:%M on %d %b", time.localtime(max(r.ended or r.created for r in replayed)))
    st.caption(f"Prepared at {when}: the stored result of {'an identical run' if len(replayed) == 1 else 'identical runs'}"
               " (same settings and seed, this code and these model files), shown at once.")
    live = [r for r in replayed if jobs.manager().can_run_live(r.id)]
    if live and (column or st).button("Run it live instead", key=f"{key}_run_live",
                                      help="Train or evaluate again now, watching it happen (the same settings)."):
        with friendly_errors("Running it live"):
            for r in live:
                jobs.run_live(r.id, owner=session_id())
        st.rerun()


def group_progress(runs: Sequence[jobs.Run]) -> None:
    """One line per run of a group: a progress bar while running, its queue place, or why it ended."""
    for run in runs:
        if run.status == jobs.RUNNING:
            st.progress(min(run.step / (run.total_steps or 1), 1.0),
                        text=f"{run.label}: step {run.step}/{run.total_steps or '?'} · {run.elapsed:.0f} s")
        elif run.status == jobs.QUEUED:
            st.caption(f"{run.label}: waiting in the queue (position {run.position})")
        elif run.status in (jobs.FAILED, jobs.STOPPED):
            st.warning(f"{run.label}: {run.reason}")


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def run_panel(run_id: str, metric_groups: Sequence[tuple[str, Sequence[str]]], *, prefix: str,
              smoothing: float = 0.6, extra: Callable[[jobs.Run], None] | None = None, every: float = 1.0) -> None:
    """Live view of one run: progress, curves (from step 1), notes, Stop; then downloads when finished.

    metric_groups: [("Loss", ["train_loss", "val_loss"]), ...] one chart each.
    extra(run): draws page-specific things under the charts (called on every refresh).
    """

    @st.fragment(run_every=every)
    def _live():
        run = jobs.get(run_id)
        if run is None:
            st.warning("That run no longer exists.")
            return
        _draw_run(run, metric_groups, prefix, smoothing, extra)
        if not run.active and st.session_state.get(f"{prefix}_live_{run_id}"):
            st.session_state[f"{prefix}_live_{run_id}"] = False
            st.rerun()  # one full rerun so the page's results section sees the finished run

    run = jobs.get(run_id)
    if run is not None and run.active:
        st.session_state[f"{prefix}_live_{run_id}"] = True
        _live()
    elif run is not None:
        _draw_run(run, metric_groups, prefix, smoothing, extra)


def _draw_run(run: jobs.Run, metric_groups, prefix: str, smoothing: float, extra) -> None:
    me = session_id()
    head = st.columns([4, 1])
    if run.status == jobs.QUEUED:
        head[0].info(f"Waiting in the queue (position {run.position}). It starts when the run ahead finishes.")
    elif run.status == jobs.RUNNING:
        total = run.total_steps or 0
        fraction = min(run.step / total, 1.0) if total else 0.0
        last = run.metrics[-1] if run.metrics else {}
        tps = f" · {last['tokens_per_s']:.0f} tokens/s" if "tokens_per_s" in last else ""
        head[0].progress(fraction, text=f"step {run.step}/{total or '?'} · elapsed {_fmt_seconds(run.elapsed)}"
                         f" · remaining {_fmt_seconds(run.remaining)}{tps}")
    elif run.status == jobs.DONE:
        head[0].success(f"Finished: {run.step} steps in {_fmt_seconds(run.elapsed)}.")
        replay_note([run], key=f"{prefix}_{run.id}", column=head[1])
    elif run.status == jobs.STOPPED:
        head[0].warning(run.reason or "Stopped.")
    else:
        head[0].error(run.reason or "The run failed.")
    if run.active and run.owner in (None, me):
        if head[1].button("Stop", key=f"{prefix}_stop_{run.id}", help="Stop this run within one step"):
            st.toast(jobs.stop(run.id, owner=me))
    groups = [g for g in metric_groups if any(k in m for m in run.metrics for k in g[1])]
    if groups:
        cols = st.columns(min(len(groups), 2))
        for i, (title, keys) in enumerate(groups):
            with cols[i % len(cols)]:
                st.plotly_chart(charts.run_curves(run.metrics, keys, title=title, smoothing=smoothing),
                                key=f"{prefix}_chart_{run.id}_{i}_{len(run.metrics)}")
    elif run.active:
        st.caption("The first step is on its way…")
    if run.notes:
        with st.expander(f"Log ({len(run.notes)} lines)", expanded=run.active):
            st.text("\n".join(run.notes[-20:]))
    if extra is not None:
        extra(run)
    if not run.active and run.metrics:
        c1, c2 = st.columns(2)
        c1.download_button("Metrics (CSV)", compare.metrics_csv(run), file_name=f"{run.id}-metrics.csv",
                           key=f"{prefix}_dl_csv_{run.id}")
        c2.download_button("Run (JSON)", json.dumps(dict(run.to_json(), metrics=run.metrics), indent=2, default=str),
                           file_name=f"{run.id}.json", key=f"{prefix}_dl_json_{run.id}")
