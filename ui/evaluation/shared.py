"""Helpers more than one tab of the evaluation page uses, none of them a tab of its own: an uploaded file's digest,
whether a run is still going, the adapter picker (Benchmark and Q&A tabs) and forgetting a picked model that the
models file no longer offers."""
from __future__ import annotations

import hashlib

import streamlit as st

from labs.models import adapters
from labs.runs import jobs


P = "eval"


def digest(data: bytes) -> str:
    """A short fingerprint of an uploaded file: the same file replays its stored run."""
    return hashlib.sha256(data).hexdigest()[:16]


def active(run_id: str | None) -> bool:
    run = jobs.get(run_id) if run_id else None
    return bool(run and run.active)


def adapter_choice(model_key: str, key: str) -> str:
    """A select box of saved adapters for this base model; '' = the base model alone."""
    found = adapters.list_adapters(base_model=model_key)
    options = [""] + [a.path for a in found]
    labels = {"": "(base model, no adapter)", **{a.path: f"{a.label} · {a.page}" for a in found}}
    return st.selectbox("Adapter", options, format_func=labels.get, key=key,
                        help="LoRA adapters saved by the fine-tuning pages (SFT, DPO, LoRA) for this base model. "
                             "The adapter is applied to a private copy; the shared model stays untouched.")


def forget_removed_models(causal: list[str]) -> None:
    """Drop a picked model that is no longer offered (an entry removed from the models file)."""
    for key in (f"{P}_model", f"{P}_gen_model", f"{P}_judge_model", f"{P}_div_model"):
        if st.session_state.get(key) not in causal:
            st.session_state.pop(key, None)
