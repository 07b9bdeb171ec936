"""The Parameter calculator tab of the LoRA rank explorer: a GPT-3-like model's dimensions, the parameter count as
metrics with the per-matrix table and parameters vs r, and the GPT-3 175B box against the paper's figures."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from labs.core import charts
from labs.finetune import lora


def mb(n_bytes: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= size:
            return f"{n_bytes / size:,.1f} {unit}"
    return f"{n_bytes:,.0f} B"


def count_text(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:,.1f}{unit}"
    return f"{n:,.0f}"


def gpt_like_dimensions() -> tuple[int, int, int, int]:
    """(d_model, layers, d_ff, vocabulary) of a GPT-3-like transformer (GPT-3 175B by default)."""
    c = st.columns(4)
    hidden = c[0].number_input("d_model", 64, 100_000, 12288, 64, key="lora_gpt_hidden",
                               help="GPT-3 175B: 12,288 (Brown et al. 2020, Table 2.1).")
    n_layers = c[1].number_input("Layers", 1, 1000, 96, key="lora_gpt_layers", help="GPT-3 175B: 96.")
    ffn = c[2].number_input("d_ff", 64, 400_000, 4 * 12288, 64, key="lora_gpt_ffn",
                            help="MLP width; 4 × d_model in GPT-3.")
    vocab = c[3].number_input("Vocabulary", 1, 1_000_000, 50257, key="lora_gpt_vocab", help="GPT-3: 50,257.")
    return int(hidden), int(n_layers), int(ffn), int(vocab)


def calculator_figures(arch: lora.Architecture, count, targets: list[str], layers: int | None, tasks: int) -> None:
    """The count as metrics (share, reduction, files, training memory), the per-matrix table and params vs r."""
    m = st.columns(4)
    m[0].metric("Trainable (LoRA)", count_text(count.lora_params), help=f"{count.lora_params:,} numbers")
    m[1].metric("Share of the model", f"{100 * count.fraction:.4f} %",
                help=f"of {count.total_params:,} parameters ({arch.source})")
    m[2].metric("Fewer trainable parameters", f"{count.reduction:,.0f}×")
    m[3].metric(f"Adapter file (full checkpoint {mb(count.full_bytes)})", mb(count.adapter_bytes),
                help="The adapter is all a task needs to store; the base model is shared by every task.")
    storage = count.storage_for_tasks(tasks)
    memory = count.training_memory()
    m = st.columns(4)
    m[0].metric(f"{tasks} full copies", mb(storage["full copies"]))
    m[1].metric(f"1 base + {tasks} adapters", mb(storage["base + adapters"]))
    m[2].metric("Training memory, full fine-tuning", mb(memory["full fine-tuning"]),
                help="fp32 weights + gradients + Adam's two moments = 16 bytes per parameter (no activations).")
    m[3].metric("Training memory, LoRA", mb(memory["LoRA"]),
                help="Frozen weights at the storage precision + 16 bytes per adapter parameter.")
    st.dataframe(pd.DataFrame(count.rows), hide_index=True, width="stretch")
    limit = min(min(arch.shape(t)) for t in targets)
    ranks = [r for r in [1, 2, 4, 8, 16, 32, 64, 128, 256] if r <= limit]
    params = [lora.lora_parameter_count(arch, targets, r, layers).lora_params for r in ranks]
    st.plotly_chart(charts.bars([f"r={r}" for r in ranks], params, title="Trainable parameters vs r (grows linearly)",
                                y="LoRA parameters", text=[count_text(p) for p in params]), key="lora_calc_chart")


def gpt3_box() -> None:
    fig = lora.gpt3_reduction()
    st.info(
        f"**GPT-3 175B, r = 4 on W_q and W_v, computed from the dimensions:** "
        f"{fig['lora_params']:,} trainable parameters of {fig['total_params'] / 1e9:,.1f} B → "
        f"**{fig['reduction']:,.0f}× fewer**; the checkpoint is {fig['full_fp32_gb']:,.0f} GB in fp32 "
        f"({fig['full_fp16_gb']:,.0f} GB in fp16), the adapter {fig['adapter_fp16_mb']:,.1f} MB in fp16.  \n"
        "*Published (Hu et al. 2021, Section 4.2): \"reduce the number of trainable parameters by 10,000 times\", "
        "checkpoint \"from 350GB to 35MB\", training VRAM \"from 1.2TB to 350GB\".*")
