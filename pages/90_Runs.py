"""Every background run in one place: list, overlay curves, diff configs, download, delete."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from labs import charts, jobs
from ui import friendly_errors, init_state, page_header, session_id

ICON = "🗂️"

page_header("Runs", "Every experiment you start on any page is a **run**: its config, seed, metrics and artifacts "
            "are kept under `LLMLAB_HOME/runs/`, survive a restart, and an identical config + seed replays the stored "
            "result at once. Compare runs here: overlay a metric, see exactly which settings differ.", ICON)
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
                       "reason": r.reason} for r in runs])
st.dataframe(table, hide_index=True, width="stretch")

ids = [r.id for r in runs]
chosen = st.multiselect("Runs to compare", ids, default=ids[:2], key="runs_compare",
                        help="Pick two or more runs to overlay their curves and diff their configs.")
by_id = {r.id: r for r in runs}
picked = [by_id[i] for i in chosen if i in by_id]
if picked:
    keys = sorted({k for r in picked for m in r.metrics for k, v in m.items()
                   if isinstance(v, (int, float)) and k not in ("step", "time")})
    if keys:
        metric = st.selectbox("Metric", keys, index=keys.index("loss") if "loss" in keys else 0, key="runs_metric",
                              help="The metric drawn for every chosen run.")
        smooth = st.slider("Smoothing", 0.0, 0.99, 0.6, key="runs_smoothing",
                           help="Exponential moving average; the raw curve stays faint behind it.")
        st.plotly_chart(charts.overlay({f"{r.label} · {r.id}": r.metrics for r in picked}, metric, smoothing=smooth),
                        key="runs_overlay")
    if len(picked) >= 2:
        st.subheader("What differs")
        diff = jobs.diff_configs(picked[0], picked[1])
        if diff:
            st.dataframe(pd.DataFrame([{"setting": d["key"], picked[0].id: json.dumps(d["a"]),
                                        picked[1].id: json.dumps(d["b"])} for d in diff]),
                         hide_index=True, width="stretch")
        else:
            st.caption("Same config and seed.")
    with st.expander("Download or delete"):
        for r in picked:
            c = st.columns([3, 1, 1])
            c[0].caption(f"{r.label} · {r.id} · {r.status}")
            c[1].download_button("CSV", jobs.metrics_csv(r) if r.metrics else "", file_name=f"{r.id}.csv",
                                 key=f"runs_csv_{r.id}", disabled=not r.metrics)
            if c[2].button("Delete", key=f"runs_delete_{r.id}", disabled=r.active or r.owner not in (None, session_id()),
                           help="Removes the run and its artifacts (adapters too)."):
                with friendly_errors("Deleting the run"):
                    jobs.manager().delete(r.id)
                    st.rerun()
