"""The Cost on this machine tab of the linear-vs-full attention page: the cost run's points so far (prefill and decode
time, peak memory vs T), the fitted slopes and crossovers, refused points, and the C10 box."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from labs.attention import cost, figures
from labs.attention.mixers import VARIANTS
from labs.runs import jobs
from ui.lessons import run_claim


P = "attn"


def cost_extra(run: jobs.Run) -> None:
    """The cost run's points so far: prefill / decode time and peak memory vs T, fitted slopes, refused points."""
    rows = [m for m in run.metrics if "variant" in m]
    if not rows:
        return
    left, right = st.columns(2)
    left.plotly_chart(figures.loglog(rows, "prefill_ms", title="Prefill: time for the whole sequence",
                                     y="ms"), key=f"{P}_cost_pf_{run.id}_{len(rows)}")
    right.plotly_chart(figures.loglog(rows, "decode_ms", title="Decode: time for one new token",
                                      y="ms"), key=f"{P}_cost_dec_{run.id}_{len(rows)}")
    left.plotly_chart(figures.loglog(rows, "peak_MiB", title="Prefill: peak extra memory", y="MiB"),
                      key=f"{P}_cost_mem_{run.id}_{len(rows)}")
    with right:
        variants = list(dict.fromkeys(r["variant"] for r in rows))
        table = [{"variant": VARIANTS[v],
                  "prefill slope": cost.fit_slope(rows, v), "decode slope": cost.fit_slope(rows, v, "decode_ms"),
                  "faster than softmax from T ≈": (None if v == "softmax" else cost.crossover(rows, v))}
                 for v in variants]
        st.caption("Fitted log-log slopes (3 longest lengths) and the crossover with softmax prefill:")
        st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
        skipped = [f"{VARIANTS[r['variant']]} at {int(r['T']):,} tokens: {r['skipped']}" for r in rows
                   if r.get("skipped")]
        if skipped:
            st.warning("Refused:\n\n" + "\n\n".join(skipped))
    run_claim("C10", run, lambda r: cost.slopes_verdict(rows), "",
              note="Timed on this machine now: other work on the CPU bends the lines.")
    st.caption("Peak memory on a CPU is the process's resident-set high-water mark (other work in the app adds "
               "noise); on a GPU it is the allocator's peak. The softmax form here is the naive one that "
               "materialises T×T scores — FlashAttention keeps memory linear but the time stays quadratic.")
