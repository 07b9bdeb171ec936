"""Supervised fine-tuning: teach a chat model a new answer format (instruction tuning) and turn it into a spam classifier.

The page is thin: widgets -> SFTConfig / ClassifierConfig -> jobs.submit -> draw. The lesson lives in labs/sft.py,
labs/classifier.py and labs/data/instructions.py.
"""
from __future__ import annotations

import dataclasses
import functools
import html
import json
from pathlib import Path

import pandas as pd
import streamlit as st

import ui
from labs import charts, classifier, generation, jobs, lessons, models, sft, training
from labs.data import instructions
from ui.lessons import claim_box

ICON = "🎓"
P = "sft"

ui.page_header(
    "Fine-tuning",
    "A base model continues text; an assistant answers. **Instruction tuning** closes the gap with plain supervised "
    "learning: render each *(instruction, input, output)* example with a prompt template, and train the usual "
    "next-token loss **only on the answer tokens**. LIMA (Zhou et al. 2023) argued that about a thousand curated "
    "examples are enough to teach a *format*. Here you teach SmolLM2 an answer card (`TL;DR:` plus two bullets) it "
    "has never used, watch train and validation loss, and compare answers with the adapter off and on. The second "
    "tab swaps the language-model head for a 2-class head and fine-tunes a spam classifier.",
    ICON,
)
ui.init_state(P, run_id=None, clf_run_id=None, compare=None, size_ids=[])

lm = ui.model_picker(P, help="SmolLM2-135M-Instruct already chats, so the change you teach is only the answer style. "
                             "Gemma-3-270M is a base model: use the Alpaca or plain template with it. Models from "
                             "your models file are listed too.", training=True)
model_key = lm.key

n_layers = len(training.decoder_layers(lm.model))
tab_sft, tab_clf = st.tabs(["Instruction tuning", "Classifier fine-tuning"])


# ---------------------------------------------------------------------------------------------------------------------
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


def load_instruction_data():
    """(train, held-out, data id) for the chosen source, or None after showing an error."""
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


def size_sweep(config: sft.SFTConfig, lm, train_examples, heldout) -> None:
    """LIMA's question as a curve: the same settings at 8 … 128 examples, format score and validation loss vs size."""
    with st.expander("Dataset-size sweep: how few examples teach the format?", expanded=bool(
            st.session_state[f"{P}_size_ids"])):
        c = st.columns([3, 1])
        sizes = c[0].multiselect("Training examples per run", list(sft.SIZE_SWEEP), default=list(sft.SIZE_SWEEP),
                                 key=f"{P}_sizes", help="One background run per size with the settings above "
                                                         "(8 examples ≈ 15 s, 128 ≈ 2 min on 2 cores).")
        if c[1].button("Run the sweep", key=f"{P}_size_go", help="Runs already done with the same settings replay "
                                                                   "at once."):
            with ui.friendly_errors("Starting the sweep"):
                if len(sizes) < 2:
                    raise ValueError("Pick at least two sizes: the sweep draws the scores against the size.")
                if not config.score_examples:
                    raise ValueError("Set 'Held-out prompts to score' above 0: the sweep plots the format score.")
                fn = functools.partial(sft.train, lm=lm, train_examples=train_examples, heldout=heldout)
                group = f"sft-sizes-{ui.session_id()}-{len(sizes)}-{sorted(sizes)}"
                st.session_state[f"{P}_size_ids"] = [
                    jobs.submit(dataclasses.replace(config, n_examples=int(n)), fn, owner=ui.session_id(),
                                label=f"SFT {n} examples", group=group) for n in sorted(sizes)]
        ids = st.session_state[f"{P}_size_ids"]
        if not ids:
            return

        def _draw():
            runs = [r for r in (jobs.get(i) for i in ids) if r is not None]
            for r in runs:
                if r.active:
                    st.caption(f"{r.label}: " + (f"step {r.step}/{r.total_steps or '?'}" if r.status == jobs.RUNNING
                                                 else f"queued (position {r.position})"))
            done = [r for r in runs if r.status == jobs.DONE]
            points = sft.size_points([(r.config["n_examples"], r.summary) for r in done])
            if points:
                st.plotly_chart(charts.two_axis(
                    [p["examples"] for p in points], ("format score (held-out)", [p["format_after"] for p in points]),
                    ("validation loss", [p["val_loss"] for p in points]), title="Format score and validation loss "
                    "vs training examples", x="training examples", log_x=True, left_range=(0, 1.05)),
                    key=f"{P}_size_chart_{len(points)}")
            if any(r.active for r in runs):
                return
            failed = [r for r in runs if r.status != jobs.DONE]
            claim_box(lessons.not_measured("C4", "; ".join(f"{r.label} did not finish ({r.reason or r.status})"
                                                           for r in failed)) if failed else sft.size_verdict(points),
                      note="Toy scale: one seed, 8 scored prompts; the loss keeps falling with more data while the "
                           "format saturates, which is LIMA's point.")
            if not any(r.active for r in runs) and st.session_state.get(f"{P}_size_live"):
                st.session_state[f"{P}_size_live"] = False
                st.rerun()

        if any(r is not None and r.active for r in (jobs.get(i) for i in ids)):
            st.session_state[f"{P}_size_live"] = True
            st.fragment(run_every=2.0)(_draw)()
        else:
            _draw()


def instruction_tab() -> None:
    st.subheader("1 · Data")
    loaded = load_instruction_data()
    if loaded is None:
        return
    train_examples, heldout, data_name = loaded
    preview = pd.DataFrame([{"instruction": e.instruction, "input": e.input, "output": e.output}
                            for e in train_examples[::max(1, len(train_examples) // 8)][:8]])
    st.dataframe(preview, hide_index=True, width="stretch")

    st.subheader("2 · Template and loss mask")
    c1, c2, c3 = st.columns([2, 1, 1])
    has_chat = sft.has_chat_template(lm.tokenizer)
    template_keys = list(sft.TEMPLATES) if has_chat else [t for t in sft.TEMPLATES if t != "chat"]
    template = c1.selectbox("Prompt template", template_keys, key=f"{P}_template", format_func=sft.TEMPLATES.get,
                            help="How an example becomes text. The chat template is what SmolLM2-Instruct already "
                                 "knows, so only the answer style must change; Alpaca's '### Response:' layout must "
                                 "be learned too.")
    train_on_prompt = c2.toggle("Train on prompt", key=f"{P}_train_on_prompt", value=False,
                                help="Off (default): prompt tokens get label -100 and no loss; the model learns "
                                     "only to answer. On: it also learns to write prompts.")
    max_len = c3.number_input("Max tokens per example", 32, 2048, 192, step=32, key=f"{P}_max_len",
                              help="Longer examples are cut (and counted below); an example whose prompt alone "
                                   "fills this is dropped.")
    idx = st.slider("Example to inspect", 0, len(train_examples) - 1, 0, key=f"{P}_example",
                    help="Pick a training example to see exactly what the model is trained on.")
    with ui.friendly_errors("Rendering the template"):
        prompt_txt, response_txt = sft.render(train_examples[idx], template, lm.tokenizer)
        view = sft.token_view(lm.tokenizer, train_examples[idx], template, train_on_prompt, int(max_len))
        trained = sum(t["trained"] for t in view)
        st.markdown(f"**{len(view)} tokens: {trained} trained (green), {len(view) - trained} masked (grey, label "
                    f"-100).** Hover a token for its id. The final `{lm.tokenizer.eos_token or 'EOS'}` is "
                    "trained so the model learns to stop.")
        st.markdown(token_html(view), unsafe_allow_html=True)
        with st.expander("Rendered text"):
            st.code(prompt_txt + response_txt, language=None)

    st.subheader("3 · What to train")
    c1, c2, c3 = st.columns(3)
    mode = c1.radio("Mode", list(sft.MODES), format_func=sft.MODES.get, key=f"{P}_mode",
                    help="LoRA trains small low-rank matrices beside frozen weights (PEFT); last-N trains only the "
                         "top blocks; full trains everything (slowest, most memory).")
    attention_targets, mlp_targets = models.lora_targets(lm.model)  # named by the model's architecture
    lora_r, lora_alpha, targets, last_n = 8, 16.0, attention_targets, 2
    if mode == "lora":
        lora_r = c2.select_slider("LoRA rank r", [1, 2, 4, 8, 16, 32, 64], value=8, key=f"{P}_lora_r",
                                  help="Rank of the update B·A; trainable parameters grow linearly with r.")
        lora_alpha = c2.number_input("LoRA alpha", 1.0, 512.0, 16.0, key=f"{P}_lora_alpha",
                                     help="The update is scaled by alpha / r.")
        options = list(attention_targets + mlp_targets)
        if any(t not in options for t in st.session_state.get(f"{P}_lora_targets", [])):
            st.session_state.pop(f"{P}_lora_targets")  # another architecture names its matrices differently
        targets = tuple(c2.multiselect("Target matrices", options, default=list(targets),
                                       key=f"{P}_lora_targets",
                                       help="Which weight matrices get adapters (attention only is cheapest). The "
                                            f"names are {lm.model.config.model_type}'s: attention "
                                            f"{', '.join(attention_targets)}; MLP {', '.join(mlp_targets) or '–'}."))
    elif mode == "last_n":
        last_n = c2.slider("Trainable last blocks", 1, n_layers, min(2, n_layers), key=f"{P}_last_n",
                           help=f"Of the model's {n_layers} blocks, train only the top N (plus the final norm).")
    else:
        c2.caption("Every weight trains: use a small learning rate (about 5e-5).")
    size = c3.select_slider("Training examples", [16, 32, 64, 128, "all"], value=64, key=f"{P}_n_examples",
                            help="Test LIMA's claim: how few examples already teach the format?")
    epochs = c3.slider("Epochs", 1, 20, 2, key=f"{P}_epochs",
                       help="Passes over the examples. Push it up with few examples to see validation loss rise "
                            "again (overfitting).")
    c1b, c2b, c3b = st.columns(3)
    lr = c1b.number_input("Learning rate", 1e-6, 0.1, 2e-3 if mode == "lora" else (5e-5 if mode == "full" else 2e-4),
                          format="%.6f", key=f"{P}_lr_{mode}",
                          help="AdamW step size: ~2e-3 for LoRA, ~2e-4 for last-N, ~5e-5 for full fine-tuning.")
    batch = c2b.select_slider("Batch size", [1, 2, 4, 8, 16], value=4, key=f"{P}_batch",
                              help="Examples per step (padded to the longest in the batch).")
    score_n = c3b.slider("Held-out prompts to score", 0, min(16, len(heldout)), min(8, len(heldout)),
                         key=f"{P}_score_n", help="Answered greedily before and after training at the end of the "
                                                  "run (0 = skip, faster).")
    precision = st.radio("Precision", ["auto", "fp32", "bf16"], horizontal=True, key=f"{P}_precision",
                         help="auto = bf16 autocast (matmuls in bfloat16, loss and optimizer in fp32) where this CPU "
                              "has native bf16 (AVX512-bf16 / AMX)"
                              + (" — it does" if sft.cpu_has_bf16() else " — it does not") + "; fp32 = exact.")

    config = None
    with ui.friendly_errors("These settings"):
        config = sft.SFTConfig(model=model_key, data=data_name, template=template, train_on_prompt=train_on_prompt,
                               mode=mode, lora_r=lora_r, lora_alpha=lora_alpha, lora_targets=targets,
                               last_n=last_n, n_examples=0 if size == "all" else int(size), epochs=epochs, lr=lr,
                               batch_size=batch, max_len=int(max_len), score_examples=score_n,
                               precision=precision)
        chosen = sft.select(train_examples, config.n_examples, config.seed)
        data = sft.tokenize(chosen, lm.tokenizer, template, train_on_prompt, int(max_len))
        if data.truncated or data.dropped:
            st.warning(f"{data.truncated} examples are longer than {max_len} tokens and will be cut; {data.dropped} "
                       "are dropped because the prompt alone fills the limit. Raise 'Max tokens per example' to keep "
                       "them whole.")
        est = sft.estimate(lm, config, data)
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
        m[4].metric("Whole run (estimate)", f"{est['seconds_total'] / 60:.1f} min")
        with st.expander("Memory breakdown"):
            st.dataframe(pd.DataFrame([{"part": k.replace("_", " "), "MB": round(v / 2**20, 1)}
                                       for k, v in est["memory_bytes"].items()]), hide_index=True)

    st.subheader("4 · Train")
    current = jobs.get(st.session_state[f"{P}_run_id"]) if st.session_state[f"{P}_run_id"] else None
    if st.button("Train", type="primary", key=f"{P}_train", disabled=config is None,
                 help="Starts a background run; leaving the page does not stop it."):
        if current is not None and current.active:
            st.warning("A run is already going: wait for it or press Stop before starting another.")
        elif not targets:
            st.error("Pick at least one LoRA target matrix.")
        else:
            with ui.friendly_errors("Starting the run"):
                # The trained copy sits next to the shared model: refuse, with the numbers, what will not fit.
                models.require_memory(lm.key, "full" if mode == "full" else "lora", params=lm.num_parameters(),
                                      dtype=lm.dtype, device=lm.device)
                fn = functools.partial(sft.train, lm=lm, train_examples=train_examples, heldout=heldout)
                st.session_state[f"{P}_run_id"] = jobs.submit(config, fn, owner=ui.session_id(), label="SFT")
                st.session_state[f"{P}_compare"] = None
    run_id = st.session_state[f"{P}_run_id"]
    if run_id:
        ui.run_panel(run_id, [("Loss (train vs validation)", ["train_loss", "val_loss"]),
                              ("Tokens per second", ["tokens_per_s"]), ("Learning rate", ["lr"])], prefix=P)
    run = jobs.get(run_id) if run_id else None
    if run is None:
        claim_box(lessons.not_measured("C4", "no run in this session yet: press Train"))
    elif not run.active:
        claim_box(sft.format_verdict(run.summary, run.config.get("n_examples") or run.summary.get("train_rows", 0))
                  if run.status == jobs.DONE else
                  lessons.not_measured("C4", f"this run did not finish ({run.reason or run.status})"),
                  note="The format is learned, not knowledge: compare 'Short answer correct' below. LIMA used 1,000 "
                       "examples on a 65B model; here 8 held-out prompts, so one prompt is 12.5 points.")
    if config is not None:
        size_sweep(config, lm, train_examples, heldout)

    if run is not None and run.status == jobs.DONE:
        st.subheader("5 · Before / after")
        s = run.summary
        cols = st.columns(4)
        if "format_after" in s:
            cols[0].metric("Follows the TL;DR format", f"{s['format_after']:.0%}",
                           f"{(s['format_after'] - s['format_before']) * 100:+.0f} points vs base", delta_color="normal")
            cols[1].metric("Short answer correct", f"{s['correct_after']:.0%}",
                           f"{(s['correct_after'] - s['correct_before']) * 100:+.0f} points vs base")
        cols[2].metric("Final validation loss", f"{s.get('final_val_loss', float('nan')):.3f}")
        if s.get("train_seconds"):
            peak = s.get("peak_gflops", 0)
            cols[3].metric("Achieved GFLOP/s", f"{s.get('achieved_gflops', 0):.1f}",
                           f"{s['achieved_gflops'] / peak:.0%} of measured matmul peak" if peak else None,
                           delta_color="off")
        score_path = Path(run.artifacts) / "score.json"
        if score_path.exists():
            rows = json.loads(score_path.read_text())["rows"]
            st.caption("Held-out prompts, greedy answers. 'Before' = the same weights with the adapter disabled.")
            st.dataframe(pd.DataFrame([{"prompt": r["instruction"] + (f"\n{r['input']}" if r["input"] else ""),
                                        "before (base)": r["before"], "after (tuned)": r["after"],
                                        "format ✓ before": r["format_before"], "format ✓ after": r["format_after"]}
                                       for r in rows]), hide_index=True, width="stretch")
        choices = [e.instruction + (f" — {e.input}" if e.input else "") for e in heldout]
        pick = st.selectbox("Held-out prompt", range(len(choices)), format_func=lambda i: choices[i][:120],
                            key=f"{P}_pick", help="A prompt the model never trained on.")
        own = st.text_input("…or type your own instruction", key=f"{P}_own", help="Leave empty to use the held-out one.")
        if st.button("Answer with both models", key=f"{P}_compare_btn"):
            st.session_state[f"{P}_compare"] = own.strip() or pick
        target = st.session_state[f"{P}_compare"]
        if target is not None:
            example = heldout[target] if isinstance(target, int) else instructions.Example(target, "")
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

        st.subheader("6 · Export")
        folder = Path(run.artifacts)
        ui.adapter_export(folder / "adapter", run.id, key=f"{P}_dl_adapter")
        if st.button("Prepare the merged model (≈ weights size)", key=f"{P}_merge",
                     help="Folds the update into the weights (W0 + B·A) and saves a full model folder."):
            with ui.friendly_errors("Merging"), st.spinner("Merging and saving…"):
                st.session_state[f"{P}_merged"] = str(sft.export_merged(lm, run))
        merged = st.session_state.get(f"{P}_merged")
        if merged and Path(merged).exists() and Path(merged).parent == folder:
            st.download_button("Download the merged model (zip)", sft.zip_folder(Path(merged)),
                               file_name=f"{run.id}-merged.zip", key=f"{P}_dl_merged")

    past = [r for r in jobs.list_runs("SFTConfig") if r.metrics]
    if len(past) > 1:
        with st.expander(f"Compare runs ({len(past)})"):
            labels = {f"{r.id} · {r.config.get('mode')} · {r.config.get('n_examples') or 'all'} ex · "
                      f"{r.config.get('epochs')} ep": r for r in past}
            chosen_runs = st.multiselect("Runs", list(labels), default=list(labels)[:2], key=f"{P}_overlay",
                                         help="Overlay validation loss; the table lists the settings that differ.")
            if chosen_runs:
                st.plotly_chart(charts.overlay({k: labels[k].metrics for k in chosen_runs}, "val_loss",
                                               title="Validation loss", smoothing=0), key=f"{P}_overlay_chart")
            if len(chosen_runs) == 2:
                st.dataframe(pd.DataFrame(jobs.diff_configs(labels[chosen_runs[0]], labels[chosen_runs[1]])),
                             hide_index=True)

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


with tab_sft:
    instruction_tab()

# ---------------------------------------------------------------------------------------------------------------------
with tab_clf:
    st.markdown("A causal model's last token has read the whole message, so its hidden state can feed a new head "
                "**hidden size → 2 classes** instead of **hidden size → vocabulary**. We don't need to fine-tune all "
                "layers — and training more layers takes more time. Measure both on this machine.")
    source = st.radio("Labelled data", ["Bundled spam / ham messages", "Upload a CSV"], key=f"{P}_clf_source",
                      horizontal=True, help="The bundled set: 116 short messages written for this lab, half spam. "
                                            "A CSV needs columns text,label with exactly two labels.")
    labelled, clf_data_id = None, "bundled"
    if source.startswith("Bundled"):
        labelled = classifier.load_bundled()
    else:
        up = st.file_uploader("CSV with text,label", type=["csv"], key=f"{P}_clf_upload",
                              help="UTF-8, a header row, two distinct labels (e.g. spam / ham).")
        if up is not None:
            try:
                labelled = classifier.parse_csv(up.getvalue())
                clf_data_id = sft.data_id(up.name, up.getvalue())
            except classifier.LabelError as exc:
                st.error(f"That CSV cannot be used: {exc}")
        else:
            st.info("Upload a CSV, or switch back to the bundled messages.")
    if labelled is not None:
        counts = {c: sum(1 for y in labelled.labels if y == i) for i, c in enumerate(labelled.classes)}
        st.caption(f"{len(labelled)} messages: " + ", ".join(f"{n} {c}" for c, n in counts.items())
                   + (f"; {labelled.skipped} empty rows skipped" if labelled.skipped else "")
                   + ". A quarter of each class is held out for validation.")
        st.dataframe(pd.DataFrame({"text": labelled.texts[:6],
                                   "label": [labelled.classes[y] for y in labelled.labels[:6]]}), hide_index=True)
        options = [0, 1, 2, 4, 8, -1]
        names = {0: "head only", -1: f"everything ({n_layers} blocks + embeddings)"}
        c1, c2, c3 = st.columns(3)
        blocks = c1.multiselect("Settings to compare", options, default=[0, 1, 2, 4], key=f"{P}_clf_blocks",
                                format_func=lambda k: names.get(k, f"head + last {k} blocks"),
                                help="Each setting trains a fresh head; more trainable blocks = more backward work.")
        clf_epochs = c2.slider("Epochs", 1, 20, 4, key=f"{P}_clf_epochs", help="Passes over the training messages.")
        clf_lr = c3.number_input("Learning rate", 1e-6, 0.1, 5e-4, format="%.5f", key=f"{P}_clf_lr",
                                 help="AdamW step size for the head and the trainable blocks.")
        st.caption("Trainable parameters: " + ", ".join(
            f"{names.get(k, f'head + last {k}')}: {classifier.trainable_count(lm, k):,}" for k in blocks))
        current = jobs.get(st.session_state[f"{P}_clf_run_id"]) if st.session_state[f"{P}_clf_run_id"] else None
        if st.button("Train classifiers", type="primary", key=f"{P}_clf_train"):
            if current is not None and current.active:
                st.warning("A classifier run is already going: wait for it or press Stop.")
            elif not blocks:
                st.error("Choose at least one setting to train.")
            else:
                with ui.friendly_errors("Starting the classifier run"):
                    cfg = classifier.ClassifierConfig(model=model_key, data=clf_data_id,
                                                      blocks=tuple(sorted(set(blocks), key=lambda k: (k == -1, k))),
                                                      epochs=clf_epochs, lr=clf_lr)
                    fn = functools.partial(classifier.train, lm=lm, data=labelled)
                    st.session_state[f"{P}_clf_run_id"] = jobs.submit(cfg, fn, owner=ui.session_id(),
                                                                      label="Classifier")
        clf_run_id = st.session_state[f"{P}_clf_run_id"]
        if clf_run_id:
            def clf_extra(r: jobs.Run) -> None:
                rows = classifier.summary_rows(r.metrics)
                if rows:
                    st.plotly_chart(classifier.blocks_chart(rows), key=f"{P}_clf_blocks_chart_{len(r.metrics)}")
                    st.dataframe(pd.DataFrame(rows), hide_index=True)

            ui.run_panel(clf_run_id, [("Accuracy", ["train_acc", "val_acc"]), ("Loss", ["train_loss", "val_loss"])],
                         prefix=f"{P}_clf", extra=clf_extra, smoothing=0.0)
    ui.how_it_works(
        r"""
The language-model head maps the last hidden state $h_T \in \mathbb{R}^D$ to $V$ logits. For classification we
replace it: $\text{logits} = W h_T + b$ with $W \in \mathbb{R}^{2 \times D}$, trained with cross-entropy. Blocks that
stay frozen compute the same output every epoch, so it is computed once and cached; each epoch then pays only for
the trainable blocks — forward and backward.
""",
        classifier.last_token, classifier.SpamClassifier.forward,
        paper="Raschka 2024, Build a Large Language Model (From Scratch), ch. 6 · Howard & Ruder 2018, ULMFiT",
    )
