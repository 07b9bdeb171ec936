"""Every background run in one place: list, overlay curves, diff configs, download, delete."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from labs.runs import compare, jobs
from ui import friendly_errors, init_state, page_header, session_id
from ui.runs import compare_runs

ICON = "🗂️"

page_header("Runs", "Every experiment you start on any page is a **run**: its config, seed, metrics and artifacts "
            "are kept under `LLMLAB_HOME/runs/` (with a shared queue: the database and `LLMLAB_ARTIFACTS/runs/`), "
            "survive a restart, and an identical config + seed replays the stored result at once. Compare runs here: "
            "overlay a metric, see exactly which settings differ.", ICON)
init_state("runs", selected=[])

all_runs = jobs.list_runs()
if not all_runs:
    st.info("No runs yet. Start a training run on any lab page and it appears here.")
    st.stop()

kinds = sorted({r.kind for r in all_runs})
kind = st.selectbox("Kind of run", ["(all)"] + kinds, key="runs_kind", help="Runs of one kind share their metrics.")
runs = [r for r in all_runs if kind == "(all)" or r.kind == kind]
table = pd.DataFrame([{"id": r.id, "label": r.label, "status": r.status, "steps": r.step,
                       "elapsed (s)": round(r.elapsed, 1), "seed": r.seed,
                       "last loss": next((m.get("loss") for m in reversed(r.metrics) if "loss" in m), None),
                       "ran on": r.worker or "this app", "reason": r.reason} for r in runs])
st.dataframe(table, hide_index=True, width="stretch")

picked = compare_runs(runs, key="runs_compare", what="Runs to compare", metric_key="runs_metric",
                      smoothing=0.6, smoothing_key="runs_smoothing", chart_key="runs_overlay", title="",
                      help="Pick two or more runs to overlay their curves and diff their configs.",
                      metric_help="The metric drawn for every chosen run.", diff_title="What differs")
if picked:
    with st.expander("Download or delete"):
        for r in picked:
            c = st.columns([3, 1, 1])
            c[0].caption(f"{r.label} · {r.id} · {r.status}")
            c[1].download_button("CSV", compare.metrics_csv(r) if r.metrics else "", file_name=f"{r.id}.csv",
                                 key=f"runs_csv_{r.id}", disabled=not r.metrics)
            if c[2].button("Delete", key=f"runs_delete_{r.id}", disabled=r.active or r.owner not in (None, session_id()),
                           help="Removes the run and its artifacts (adapters too)."):
                with friendly_errors("Deleting the run"):
                    jobs.manager().delete(r.id)
                    st.rerun()
