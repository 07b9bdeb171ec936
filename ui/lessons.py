"""The "Does the lecture's claim hold here?" box: one verdict from labs.runs.lessons, drawn next to its experiment.

The page computes the verdict from its latest run (a labs.runs.lessons criterion over the run's figures) and hands it
here; the box never holds text of its own about the outcome. `run_claim` / `pending` cover the run's life cycle:
no run yet, running, failed or stopped, done.
"""
from __future__ import annotations

from typing import Callable

import streamlit as st

from labs.runs import jobs
from labs.runs import lessons


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


def pending(claim_id: str, run: jobs.Run | None, how_to_start: str) -> bool:
    """True (after drawing 'not measured yet' with the reason) while the claim's run is missing, failed or was
    stopped; True and nothing drawn while it runs; False once it is done and its verdict can be drawn."""
    if run is None:
        claim_box(lessons.not_measured(claim_id, f"no run in this session yet: {how_to_start}"))
    elif run.status != jobs.DONE and not run.active:
        claim_box(lessons.not_measured(claim_id, f"this run did not finish ({run.reason or run.status})"))
    return run is None or run.status != jobs.DONE


def run_claim(claim_id: str, run: jobs.Run | None, verdict: Callable[[jobs.Run], lessons.Verdict], how_to_start: str,
              note: str | Callable[[jobs.Run], str] = "") -> None:
    """The claim box for an experiment's latest run: `pending` until it is done, then verdict(run) with the note."""
    if not pending(claim_id, run, how_to_start):
        claim_box(verdict(run), note=note(run) if callable(note) else note)
