"""Drawing helpers for the fine-tuning page: data pickers, the loss-mask view, the training knobs, the estimate,
the before/after section and the classifier's data. The lesson lives in labs/finetune/sft.py and labs/finetune/classifier.py."""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import streamlit as st

import ui
from labs.finetune import classifier
from labs.serving import generation
from labs.runs import jobs
from labs.runs import lessons
from labs import models
from labs.runs import results
from labs.finetune import sft
from labs.data import instructions
from labs.training import loop as training
from ui.lessons import run_claim

P = "sft"


def token_html(tokens: list[dict]) -> str:
    """Trained tokens green, masked tokens grey; whitespace made visible."""
    spans = []
    for t in tokens:
        text = html.escape(t["text"]).replace("\n", "↵<br>") or "∅"
        style = ("background:#c7f0c2;color:#0b3d0b" if t["trained"] else "background:#eeeeee;color:#777")
        spans.append(f'<span title="id {t["id"]} · {"trained" if t["trained"] else "masked (-100)"}" '
                     f'style="{style};border-radius:3px;padding:1px 2px;margin:1px;display:inline-block;'
                     f'font-family:monospace;font-size:0.85em">{text}</span>')
    return "<div style='line-height:1.9'>" + "".join(spans) + "</div>"


def instruction_data():
    """(train, held-out, data id) for the chosen source with a preview of it, or None after showing an error."""
    loaded = _instruction_data()
    if loaded is not None:
        train = loaded[0]
        st.dataframe(pd.DataFrame([{"instruction": e.instruction, "input": e.input, "output": e.output}
                                   for e in train[::max(1, len(train) // 8)][:8]]), hide_index=True, width="stretch")
    return loaded


def _instruction_data():
    source = st.radio("Data", ["Bundled TL;DR set", "Upload a file"], key=f"{P}_source", horizontal=True,
                      help="The bundled set (written for this lab) answers every question as 'TL;DR: …' plus two "
                           "bullets. Upload Alpaca JSON/JSONL (instruction, input, output) or conversations "
                           "(ShareGPT from/value, role/content messages, LIMA string lists).")
    if source == "Bundled TL;DR set":
        train, held = sft.load_bundled()
        st.caption(f"{len(train)} training and {len(held)} held-out examples (assets/sft/, written for LLM Lab).")
        return train, held, "bundled"
    upload = st.file_uploader("Instruction file", type=["json", "jsonl"], key=f"{P}_upload",
                              help="JSON array or JSON Lines, UTF-8, up to 20 MB.")
    if upload is None:
        st.info("Upload a file, or switch back to the bundled set.")
        return None
    raw = upload.getvalue()
    try:
        result = instructions.parse(raw)
        train, held = instructions.split(result.examples)
    except instructions.InstructionFormatError as exc:
        st.error(f"That file cannot be used: {exc}")
        return None
    st.caption(f"Read {len(result.examples)} examples ({result.format} format): {len(train)} to train on, "
               f"{len(held)} held out.")
    if result.skipped:
        st.warning(f"Skipped rows: {result.skipped_text()}.")
    return train, held, sft.data_id(upload.name, raw)


def mask_view(lm, example, template: str, train_on_prompt: bool, max_len: int) -> None:
    """The example as the model sees it: trained tokens green, masked grey, and the rendered text."""
    with ui.friendly_errors("Rendering the template"):
        prompt_txt, response_txt = sft.render(example, template, lm.tokenizer)
        view = sft.token_view(lm.tokenizer, example, template, train_on_prompt, max_len)
        trained = sum(t["trained"] for t in view)
        st.markdown(f"**{len(view)} tokens: {trained} trained (green), {len(view) - trained} masked (grey, label "
                    f"-100).** Hover a token for its id. The final `{lm.tokenizer.eos_token or 'EOS'}` is "
                    "trained so the model learns to stop.")
        st.markdown(token_html(view), unsafe_allow_html=True)
        with st.expander("Rendered text"):
            st.code(prompt_txt + response_txt, language=None)


def what_to_train(lm, n_layers: int, n_heldout: int) -> dict:
    """Mode (LoRA / last N / full) and its knobs, examples, epochs, learning rate, batch, scoring, precision —
    as SFTConfig keyword arguments."""
    c1, c2, c3 = st.columns(3)
    mode = c1.radio("Mode", list(sft.MODES), format_func=sft.MODES.get, key=f"{P}_mode",
                    help="LoRA trains small low-rank matrices beside frozen weights (PEFT); last-N trains only the "
                         "top blocks; full trains everything (slowest, most memory).")
    D = sft.SFTConfig  # the defaults (make prepare and the lessons bench run these)
    attention_targets, mlp_targets = models.lora_targets(lm.model)  # named by the model's architecture
    lora_r, lora_alpha, last_n, lora_layers = D.lora_r, float(D.lora_alpha), D.last_n, 0  # what a non-LoRA run keeps
    targets = tuple(t for t in attention_targets + mlp_targets if t in D.lora_targets) or attention_targets
    if mode == "lora":
        lora_r = c2.select_slider("LoRA rank r", [1, 2, 4, 8, 16, 32, 64], value=D.lora_r, key=f"{P}_lora_r",
                                  help="Rank of the update B·A; trainable parameters grow linearly with r.")
        lora_alpha = c2.number_input("LoRA alpha", 1.0, 512.0, float(D.lora_alpha), key=f"{P}_lora_alpha",
                                     help="The update is scaled by alpha / r.")
        options = list(attention_targets + mlp_targets)
        if any(t not in options for t in st.session_state.get(f"{P}_lora_targets", [])):
            st.session_state.pop(f"{P}_lora_targets")  # another architecture names its matrices differently
        targets = tuple(c2.multiselect("Target matrices", options, default=list(targets),
                                       key=f"{P}_lora_targets",
                                       help="Which weight matrices get adapters (attention only is cheapest). The "
                                            f"names are {lm.model.config.model_type}'s: attention "
                                            f"{', '.join(attention_targets)}; MLP {', '.join(mlp_targets) or '–'}."))
        lora_layers = int(c2.number_input(
            "Top blocks adapted (0 = all)", 0, n_layers, D.lora_layers if D.lora_layers < n_layers else 0,
            key=f"{P}_lora_layers", help=f"LoRA only on the top N of the model's {n_layers} blocks. The blocks below "
                                         "stay frozen, so each row runs through them once and their output is "
                                         "reused every epoch; the backward pass stops at the lowest adapted block."))
    elif mode == "last_n":
        last_n = c2.slider("Trainable last blocks", 1, n_layers, min(2, n_layers), key=f"{P}_last_n",
                           help=f"Of the model's {n_layers} blocks, train only the top N (plus the final norm).")
    else:
        c2.caption("Every weight trains: use a small learning rate (about 5e-5).")
    size = c3.select_slider("Training examples", [16, 32, 64, 128, "all"], value=D.n_examples, key=f"{P}_n_examples",
                            help="Test LIMA's claim: how few examples already teach the format?")
    epochs = c3.slider("Epochs", 1, 20, D.epochs, key=f"{P}_epochs",
                       help="Passes over the examples. Push it up with few examples to see validation loss rise "
                            "again (overfitting).")
    c1b, c2b, c3b = st.columns(3)
    lr = c1b.number_input("Learning rate", 1e-6, 0.1, D.lr if mode == "lora" else (5e-5 if mode == "full" else 2e-4),
                          format="%.6f", key=f"{P}_lr_{mode}",
                          help="AdamW step size: ~4e-3 for LoRA on a few blocks, ~2e-4 for last-N, ~5e-5 for full fine-tuning.")
    batch = c2b.select_slider("Batch size", [1, 2, 4, 8, 16], value=D.batch_size, key=f"{P}_batch",
                              help="Examples per step (padded to the longest in the batch).")
    score_n = c3b.slider("Held-out prompts to score", 0, min(16, n_heldout), min(D.score_examples, n_heldout),
                         key=f"{P}_score_n", help="Answered greedily before and after training at the end of the "
                                                  "run (0 = skip, faster).")
    precision = st.radio("Precision", ["auto", "fp32", "bf16"], horizontal=True, key=f"{P}_precision",
                         help="auto = bf16 autocast (matmuls in bfloat16, loss and optimizer in fp32) where this CPU "
                              "has native bf16 (AVX512-bf16 / AMX)"
                              + (" — it does" if sft.cpu_has_bf16() else " — it does not") + "; fp32 = exact.")
    return dict(mode=mode, lora_r=lora_r, lora_alpha=lora_alpha, lora_targets=targets, lora_layers=lora_layers,
                last_n=last_n,
                n_examples=0 if size == "all" else int(size), epochs=epochs, lr=lr, batch_size=batch,
                score_examples=score_n, precision=precision)


def estimate(est: dict) -> None:
    """Trainable parameters, memory, steps and time of a run before it starts (sft.estimate)."""
    m = st.columns(5)
    m[0].metric("Trainable parameters", f"{est['trainable']:,}", f"{est['trainable_pct']:.2f}% of {est['total']:,}",
                delta_color="off")
    m[1].metric("Memory (estimate)", f"{est['memory_total_mb']:,.0f} MB",
                help="weights + gradients + AdamW state (2 numbers per trainable weight) + saved activations "
                     "+ the LM head's logits on supervised tokens")
    m[2].metric("Steps", est["steps"], f"{est['tokens_per_step']:.0f} tokens per step", delta_color="off")
    m[3].metric("Time per step (estimate)", f"{est['seconds_per_step']:.1f} s",
                help=f"{est['flops_per_step'] / 1e9:.0f} GFLOP per step at half of this machine's measured "
                     f"{'bf16' if est['bf16'] else 'fp32'} matmul rate ({est['peak_gflops']:.0f} GFLOP/s)")
    m[4].metric("Training steps (estimate)", f"{est['seconds_total'] / 60:.1f} min",
                help="the forward and backward passes and updates only: the before and after answers, the held-out "
                     "scores and the validation losses come on top, and so does loading the model on a first run")
    with st.expander("Memory breakdown"):
        st.dataframe(pd.DataFrame([{"part": k.replace("_", " "), "MB": round(v / 2**20, 1)}
                                   for k, v in est["memory_bytes"].items()]), hide_index=True)


def before_after(result: results.SFTResult) -> None:
    """Format score, correctness, validation loss and GFLOP/s of a finished run, and the scored prompts."""
    s = result.summary
    cols = st.columns(4)
    if result.scored:
        cols[0].metric("Follows the TL;DR format", f"{s['format_after']:.0%}",
                       f"{(s['format_after'] - s['format_before']) * 100:+.0f} points vs base", delta_color="normal")
        if s.get("correct_after") is not None:  # a sweep run scores the format only
            cols[1].metric("Short answer correct", f"{s['correct_after']:.0%}",
                           f"{(s['correct_after'] - s['correct_before']) * 100:+.0f} points vs base")
    cols[2].metric("Final validation loss", f"{s.get('final_val_loss', float('nan')):.3f}")
    if s.get("train_seconds"):
        peak = s.get("peak_gflops", 0)
        cols[3].metric("Achieved GFLOP/s", f"{s.get('achieved_gflops', 0):.1f}",
                       f"{s['achieved_gflops'] / peak:.0%} of measured matmul peak" if peak else None,
                       delta_color="off")
    if result.score_rows:
        st.caption("Held-out prompts, greedy answers. 'Before' = the same weights with the adapter disabled.")
        st.dataframe(pd.DataFrame([{"prompt": r["instruction"] + (f"\n{r['input']}" if r["input"] else ""),
                                    "before (base)": r["before"], "after (tuned)": r["after"],
                                    "format ✓ before": r["format_before"], "format ✓ after": r["format_after"]}
                                   for r in result.score_rows]), hide_index=True, width="stretch")


def answer_both(lm, run, example) -> None:
    """The same prompt answered greedily by the base model (adapter off) and the tuned one, side by side."""
    with ui.friendly_errors("Answering"):
        tuned = sft.tuned_model(lm, run)
        prompt = sft.prompt_text(lm, example, run.config["template"])
        gen_cfg = generation.GenerationConfig(max_new_tokens=64, temperature=0, repetition_penalty=1.1)
        left, right = st.columns(2)
        with left:
            st.markdown("**Before** — base model (adapter off)")
            st.write_stream(sft.stream_answer(lm, lm.model, prompt, gen_cfg))
        with right:
            st.markdown("**After** — fine-tuned")
            st.write_stream(sft.stream_answer(lm, tuned, prompt, gen_cfg))


def export(lm, run, result: results.SFTResult) -> None:
    """Download the adapter; fold it into the weights and download the merged model."""
    st.subheader("6 · Export")
    folder = result.folder
    ui.adapter_export(folder / "adapter", run.id, key=f"{P}_dl_adapter")
    if st.button("Prepare the merged model (≈ weights size)", key=f"{P}_merge",
                 help="Folds the update into the weights (W0 + B·A) and saves a full model folder."):
        with ui.friendly_errors("Merging"), st.spinner("Merging and saving…"):
            st.session_state[f"{P}_merged"] = str(sft.export_merged(lm, run))
    merged = st.session_state.get(f"{P}_merged")
    if merged and Path(merged).exists() and Path(merged).parent == folder:
        st.download_button("Download the merged model (zip)", sft.zip_folder(Path(merged)),
                           file_name=f"{run.id}-merged.zip", key=f"{P}_dl_merged")


def run_label(r) -> str:
    return f"{r.id} · {r.config.get('mode')} · {r.config.get('n_examples') or 'all'} ex · {r.config.get('epochs')} ep"


def labelled_data():
    """(labelled messages or None, data id) from the bundled spam/ham set or an uploaded CSV."""
    source = st.radio("Labelled data", ["Bundled spam / ham messages", "Upload a CSV"], key=f"{P}_clf_source",
                      horizontal=True, help="The bundled set: 116 short messages written for this lab, half spam. "
                                            "A CSV needs columns text,label with exactly two labels.")
    if source.startswith("Bundled"):
        return classifier.load_bundled(), "bundled"
    up = st.file_uploader("CSV with text,label", type=["csv"], key=f"{P}_clf_upload",
                          help="UTF-8, a header row, two distinct labels (e.g. spam / ham).")
    if up is None:
        st.info("Upload a CSV, or switch back to the bundled messages.")
        return None, "bundled"
    try:
        return classifier.parse_csv(up.getvalue()), sft.data_id(up.name, up.getvalue())
    except classifier.LabelError as exc:
        st.error(f"That CSV cannot be used: {exc}")
        return None, "bundled"


def labelled_preview(labelled) -> None:
    counts = {c: sum(1 for y in labelled.labels if y == i) for i, c in enumerate(labelled.classes)}
    st.caption(f"{len(labelled)} messages: " + ", ".join(f"{n} {c}" for c, n in counts.items())
               + (f"; {labelled.skipped} empty rows skipped" if labelled.skipped else "")
               + ". A quarter of each class is held out for validation.")
    st.dataframe(pd.DataFrame({"text": labelled.texts[:6],
                               "label": [labelled.classes[y] for y in labelled.labels[:6]]}), hide_index=True)


def classifier_panel(run_id: str | None) -> None:
    """The classifier run live: accuracy and loss curves, then one row per trainable-blocks setting."""
    if run_id:
        ui.run_panel(run_id, [("Accuracy", ["train_acc", "val_acc"]), ("Loss", ["train_loss", "val_loss"])],
                     prefix=f"{P}_clf", extra=classifier_rows, smoothing=0.0)
    classifier_claim(jobs.get(run_id) if run_id else None)


def classifier_claim(run) -> None:
    """C5 from the latest classifier run: seconds per epoch against trainable blocks (not measured until it ends)."""
    run_claim("C5", run, lambda r: lessons.cost_grows_with_blocks(
        {row["blocks"]: row["seconds_per_epoch"] for row in results.load_result(r).rows if "seconds_per_epoch" in row}),
        "press 'Train classifiers'", note="Each setting is timed in the same run on this machine; more trainable "
                                          "blocks means a longer backward pass and more optimizer state.")


def classifier_rows(r) -> None:
    """Per-setting accuracy and time, live from the run's metrics (run_panel's extra)."""
    rows = classifier.summary_rows(r.metrics)
    if rows:
        st.plotly_chart(classifier.blocks_chart(rows), key=f"{P}_clf_blocks_chart_{len(r.metrics)}")
        st.dataframe(pd.DataFrame(rows), hide_index=True)


def how_sft() -> None:
    ui.how_it_works(
        r"""
**Loss.** For a prompt $x$ and answer $y = (y_1..y_m)$ the SFT loss is the answer's negative log-likelihood,
$\mathcal{L} = -\frac{1}{m}\sum_{t=1}^{m}\log p_\theta(y_t \mid x, y_{<t})$ — the pre-training loss with the prompt
positions masked (label $-100$), so gradients only teach *answering*. Because masked positions carry no loss, the
LM head ($D \times V$, a fifth of SmolLM2's weights) runs only on the supervised positions.

**LoRA** (Hu et al. 2021, eq. 3): $h = W_0 x + \frac{\alpha}{r} B A x$ with $B = 0$ at the start, so training
starts exactly at the base model; disabling the adapter gives the base model back bit for bit.

**Cost.** A step costs about $6N$ FLOPs per token for full fine-tuning (Kaplan et al. 2020): $2N$ forward, $4N$
backward. With LoRA or last-N the weight-gradient part shrinks to the trainable weights; gradients still flow down
to the lowest trainable block.
""",
        sft.supervised_loss, training.tokenize_example,
        paper="Taori et al. 2023, Stanford Alpaca · Zhou et al. 2023, LIMA: Less Is More for Alignment · "
              "Hu et al. 2021, LoRA · Wei et al. 2022, FLAN",
    )
