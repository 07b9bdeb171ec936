"""The Inside ΔW tab of the LoRA rank explorer: a trained adapter's ΔW per layer and matrix, its notes (DoRA,
PiSSA/OLoRA), the effective ranks and spectra, subspace similarity between two ranks, and how ΔW relates to W0."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from labs.core import charts
from labs.finetune import lora


def _stamp(folder: str) -> tuple:
    """What changes when an adapter folder is written again (a run redone live): its files' sizes and times."""
    files = sorted(Path(folder).glob("*")) if Path(folder).is_dir() else []
    return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file())


def deltas(folder: str) -> list[lora.DeltaW]:
    return _deltas(folder, _stamp(folder))


@st.cache_data(show_spinner=False, max_entries=16)
def _deltas(folder: str, stamp: tuple) -> list[lora.DeltaW]:
    return lora.adapter_deltas(folder)


# The tab is drawn on every rerun of the page, visible or not: its SVDs (0.3-1 s for an adapter on 8 layers, measured
# on 2 cores) are computed once per adapter, not at every click elsewhere on the page.
@st.cache_data(show_spinner=False, max_entries=16)
def _spectra_rows(folder: str, stamp: tuple) -> list[dict]:
    return lora.delta_spectra(deltas(folder))


@st.cache_data(show_spinner=False, max_entries=32)
def _w0_rows(_lm, model_key: str, folder: str, stamp: tuple, layer) -> list[dict]:
    return lora.w0_table(_lm, [d for d in deltas(folder) if d.layer == layer])


def adapter_notes(config: dict) -> None:
    if config.get("use_dora"):
        st.caption("DoRA run: ΔW below is the direction update (α/r)·BA; DoRA's per-row magnitude "
                   "rescaling comes on top of it.")
    if config.get("init") in ("pissa_niter_4", "olora"):
        st.caption("PiSSA/OLoRA run: the saved adapter was converted to a plain LoRA of rank 2r relative "
                   "to the original W0 (PEFT's path_initial_model_for_weight_conversion).")


def spectra(folder: str) -> None:
    """Effective rank per layer and matrix (heatmap), chosen singular-value spectra, and the numbers, of the
    adapter in `folder`."""
    rows = _spectra_rows(folder, _stamp(folder))
    frame = pd.DataFrame(rows)
    pivot = frame.pivot(index="matrix", columns="layer", values="effective rank")
    st.plotly_chart(charts.heatmap(pivot.values.tolist(), [str(c) for c in pivot.columns], list(pivot.index),
                                   title="Effective rank of ΔW (Roy & Vetterli) per layer and matrix",
                                   x="layer", y="", zmin=1), key="lora_inside_erank")
    names = [f"L{row['layer']} {row['matrix']}" for row in rows]
    pick = st.multiselect("Singular values of", names, default=names[-2:], key="lora_inside_pick",
                          help="Each line: the singular values of one ΔW, largest first.")
    series = {n: (list(range(1, len(row["singular values"]) + 1)), row["singular values"])
              for n, row in zip(names, rows) if n in pick}
    if series:
        st.plotly_chart(charts.curves(series, title="Spectrum of ΔW = (α/r)·BA", x="index i", y="σ_i"),
                        key="lora_inside_spectrum")
    st.dataframe(frame.drop(columns=["singular values"]), hide_index=True, width="stretch", height=220)


def similarity(a1, a2, where: str) -> None:
    """φ(A1, A2, i, j) as a heatmap, with the random-subspace baseline and the paper's finding."""
    grid = lora.similarity_grid(a1, a2, max_j=64)
    st.plotly_chart(charts.heatmap(grid, [str(j) for j in range(1, len(grid[0]) + 1)],
                                   [str(i) for i in range(1, len(grid) + 1)], zmin=0, zmax=1,
                                   title=f"φ(A_r={a1.shape[0]}, A_r={a2.shape[0]}, i, j) at {where}",
                                   x="j (directions of adapter 2)", y="i (directions of adapter 1)",
                                   text_fmt=".2f" if len(grid[0]) <= 16 else None), key="lora_sim_heat")
    st.caption(f"For comparison, two random subspaces of ℝ^{a1.shape[1]} give φ ≈ max(i, j)/{a1.shape[1]} "
               f"(e.g. {1 / a1.shape[1]:.3f} at i = j = 1). The paper finds the top direction of r = 8 and "
               "r = 64 overlap with φ > 0.5: a very low rank captures what matters.")


def w0_relation(lm, folder: str, layer) -> None:
    """How the adapter's ΔW at `layer` relates to the base model's W0 (paper Section 7.3)."""
    rows = _w0_rows(lm, lm.key, folder, _stamp(folder), layer)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption("If ||U^T W0 V^T|| on ΔW's directions is much smaller than on W0's own top directions (and "
               "near random), ΔW amplifies directions W0 has but does not emphasise; the amplification "
               "factor ||ΔW||/||U^T W0 V^T|| says by how much. Paper, Table 7 (GPT-3 layer 48, W_q): "
               "factor ≈ 21.5 for r = 4 and ≈ 6.9 for r = 64.")
