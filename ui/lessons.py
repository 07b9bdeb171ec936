"""The "Does the lecture's claim hold here?" box: one verdict from labs.lessons, drawn next to its experiment.

The page computes the verdict from its latest run (a labs.lessons criterion over the run's figures) and hands it
here; the box never holds text of its own about the outcome.
"""
from __future__ import annotations

import streamlit as st

from labs import lessons


def claim_box(verdict: lessons.Verdict, *, note: str = "") -> None:
    """Draw one claim's verdict: the statement, holds / does not hold / not measured yet with the figure or the
    reason, the criterion, and where toy scale differs from the paper. `note`: an extra sentence from the page."""
    claim = lessons.CLAIMS[verdict.claim]
    with st.container(border=True):
        st.markdown(f"**Does the lecture's claim hold here?** ({claim.id}) — *{claim.statement}*")
        if verdict.verdict == lessons.HOLDS:
            st.success(f"**Holds** in this run: {verdict.figure}.")
        elif verdict.verdict == lessons.FAILS:
            st.warning(f"**Does not hold** in this run: {verdict.figure}. {verdict.reason}")
        else:
            st.info(f"**Not measured yet**: {verdict.reason}")
        extra = " ".join(x for x in (claim.scale_note, note) if x)
        st.caption(f"Criterion: {claim.criterion}." + (f" {extra}" if extra else ""))
