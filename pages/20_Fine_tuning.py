"""Supervised fine-tuning: teach a chat model a new answer format (instruction tuning) and turn it into a spam classifier.

The page is thin: widgets -> SFTConfig / ClassifierConfig -> jobs.submit -> draw. The lesson lives in labs/finetune/sft.py,
labs/finetune/classifier.py and labs/data/instructions.py.
"""
from __future__ import annotations

import functools

import streamlit as st

import ui
from labs import models
from labs.core import charts
from labs.core.errors import ConfigError
from labs.data import instructions
from labs.finetune import classifier, sft
from labs.runs import jobs, lessons, results
from labs.training import loop as training
from ui import sft as sft_ui
from ui.lessons import claim_box, run_claim
from ui.runs import compare_runs, group_progress, start_button, watch_group


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


def size_sweep(config: sft.SFTConfig, lm, train_examples, heldout) -> None:
    """LIMA's question as a curve: the same settings at 8 … 64 (or 128) examples, format score and validation loss vs
    size."""
    with st.expander("Dataset-size sweep: how few examples teach the format?", expanded=bool(
            st.session_state[f"{P}_size_ids"])):
        c = st.columns([3, 1])
        sizes = c[0].multiselect("Training examples per run", list(sft.SIZE_SWEEP), default=list(sft.SWEEP_DEFAULT),
                                 key=f"{P}_sizes", help="One background run per size with the settings above "
                                                         "(8 examples ≈ 5 s, 64 ≈ 30 s on 2 cores; the default four about a minute).")
        if c[1].button("Run the sweep", key=f"{P}_size_go", help="Runs already done with the same settings replay "
                                                                   "at once."):
            with ui.friendly_errors("Starting the sweep"):
                if len(sizes) < 2:
                    raise ConfigError("Pick at least two sizes: the sweep draws the scores against the size.")
                if not config.score_examples:
                    raise ConfigError("Set 'Held-out prompts to score' above 0: the sweep plots the format score.")
                fn = functools.partial(sft.train, lm=lm, train_examples=train_examples, heldout=heldout)
                group = f"sft-sizes-{ui.session_id()}-{len(sizes)}-{sorted(sizes)}"
                st.session_state[f"{P}_size_ids"] = [
                    jobs.submit(sft.sweep_config(config, n), fn, owner=ui.session_id(),
                                label=f"SFT {n} examples", group=group) for n in sorted(sizes)]
        if st.session_state[f"{P}_size_ids"]:
            watch_group(st.session_state[f"{P}_size_ids"], _size_points, key=f"{P}_size", every=2.0)


def _size_points(runs: list[jobs.Run]) -> None:
    group_progress([r for r in runs if r.active])
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
              note=f"Toy scale: one seed, {runs[0].config.get('score_examples', '?')} scored prompts; the loss keeps "
                   "falling with more data while the format saturates, which is LIMA's point.")


def instruction_tab() -> None:
    st.subheader("1 · Data")
    loaded = sft_ui.instruction_data()
    if loaded is None:
        return
    train_examples, heldout, data_name = loaded

    st.subheader("2 · Template and loss mask")
    c1, c2, c3 = st.columns([2, 1, 1])
    template_keys = [t for t in sft.TEMPLATES if t != "chat" or sft.has_chat_template(lm.tokenizer)]
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
    sft_ui.mask_view(lm, train_examples[idx], template, train_on_prompt, int(max_len))

    st.subheader("3 · What to train")
    knobs = sft_ui.what_to_train(lm, n_layers, len(heldout))
    config = None
    with ui.friendly_errors("These settings"):
        config = sft.SFTConfig(model=model_key, data=data_name, template=template, train_on_prompt=train_on_prompt,
                               max_len=int(max_len), **knobs)
        data = sft.tokenize(sft.select(train_examples, config.n_examples, config.seed), lm.tokenizer, template,
                            train_on_prompt, int(max_len))
        if data.truncated or data.dropped:
            st.warning(f"{data.truncated} examples are longer than {max_len} tokens and will be cut; {data.dropped} "
                       "are dropped because the prompt alone fills the limit. Raise 'Max tokens per example' to keep "
                       "them whole.")
        sft_ui.estimate(sft.estimate(lm, config, data))

    st.subheader("4 · Train")
    train_and_watch(config, train_examples, heldout)
    if config is not None:
        size_sweep(config, lm, train_examples, heldout)
    run = jobs.get(st.session_state[f"{P}_run_id"]) if st.session_state[f"{P}_run_id"] else None
    result = results.load_result(run)
    if result is not None:
        before_after_section(run, result, heldout)
    past = results.runs(sft.SFTConfig, with_metrics=True)
    if len(past) > 1:
        with st.expander(f"Compare runs ({len(past)})"):
            compare_runs(past, key=f"{P}_overlay", label=sft_ui.run_label, metrics=["val_loss"],
                         title="Validation loss", help="Overlay validation loss; the table lists the settings "
                                                       "that differ.")
    sft_ui.how_sft()


def train_and_watch(config, train_examples, heldout) -> None:
    if start_button("Train", key=f"{P}_train", current_id=st.session_state[f"{P}_run_id"], disabled=config is None):
        if not config.lora_targets:
            st.error("Pick at least one LoRA target matrix.")
        else:
            with ui.friendly_errors("Starting the run"):
                # The trained copy sits next to the shared model: refuse, with the numbers, what will not fit.
                models.require_memory(lm.key, "full" if config.mode == "full" else "lora",
                                      params=lm.num_parameters(), dtype=lm.dtype, device=lm.device)
                fn = functools.partial(sft.train, lm=lm, train_examples=train_examples, heldout=heldout)
                st.session_state[f"{P}_run_id"] = jobs.submit(config, fn, owner=ui.session_id(), label="SFT")
                st.session_state[f"{P}_compare"] = None
    run_id = st.session_state[f"{P}_run_id"]
    if run_id:
        ui.run_panel(run_id, [("Loss (train vs validation)", ["train_loss", "val_loss"]),
                              ("Tokens per second", ["tokens_per_s"]), ("Learning rate", ["lr"])], prefix=P)
    run = jobs.get(run_id) if run_id else None
    run_claim("C4", run, lambda r: sft.format_verdict(r.summary, r.config.get("n_examples") or r.summary["train_rows"]),
              "press Train", note=lambda r: "The format is learned, not knowledge: compare 'Short answer correct' "
              f"below. LIMA used 1,000 examples on a 65B model; here {r.config.get('score_examples')} held-out prompts.")


def before_after_section(run: jobs.Run, result: results.SFTResult, heldout) -> None:
    st.subheader("5 · Before / after")
    sft_ui.before_after(result)
    choices = [e.instruction + (f" — {e.input}" if e.input else "") for e in heldout]
    pick = st.selectbox("Held-out prompt", range(len(choices)), format_func=lambda i: choices[i][:120],
                        key=f"{P}_pick", help="A prompt the model never trained on.")
    own = st.text_input("…or type your own instruction", key=f"{P}_own", help="Leave empty to use the held-out one.")
    st.caption("Both answers are decoded by the torch engine in float32, the base with the adapter switched off: "
               "the only difference between them is the adapter. (Chat and the arena use the fast runtime, which "
               "serves class adapters as merged copies.)")
    if st.button("Answer with both models", key=f"{P}_compare_btn"):
        st.session_state[f"{P}_compare"] = own.strip() or pick
    target = st.session_state[f"{P}_compare"]
    if target is not None:
        sft_ui.answer_both(lm, run, heldout[target] if isinstance(target, int) else instructions.Example(target, ""))
    sft_ui.export(lm, run, result)


def classifier_tab() -> None:
    st.markdown("A causal model's last token has read the whole message, so its hidden state can feed a new head "
                "**hidden size → 2 classes** instead of **hidden size → vocabulary**. We don't need to fine-tune all "
                "layers — and training more layers takes more time. Measure both on this machine.")
    labelled, clf_data_id = sft_ui.labelled_data()
    if labelled is not None:
        sft_ui.labelled_preview(labelled)
        names = {0: "head only", -1: f"everything ({n_layers} blocks + embeddings)"}
        c1, c2, c3 = st.columns(3)
        blocks = c1.multiselect("Settings to compare", [0, 1, 2, 4, 8, -1], default=[0, 1, 2, 4],
                                key=f"{P}_clf_blocks", format_func=lambda k: names.get(k, f"head + last {k} blocks"),
                                help="Each setting trains a fresh head; more trainable blocks = more backward work.")
        clf_epochs = c2.slider("Epochs", 1, 20, 4, key=f"{P}_clf_epochs", help="Passes over the training messages.")
        clf_lr = c3.number_input("Learning rate", 1e-6, 0.1, 5e-4, format="%.5f", key=f"{P}_clf_lr",
                                 help="AdamW step size for the head and the trainable blocks.")
        st.caption("Trainable parameters: " + ", ".join(
            f"{names.get(k, f'head + last {k}')}: {classifier.trainable_count(lm, k):,}" for k in blocks))
        if start_button("Train classifiers", key=f"{P}_clf_train", current_id=st.session_state[f"{P}_clf_run_id"],
                        busy="A classifier run is already going: wait for it or press Stop."):
            if not blocks:
                st.error("Choose at least one setting to train.")
            else:
                with ui.friendly_errors("Starting the classifier run"):
                    cfg = classifier.ClassifierConfig(model=model_key, data=clf_data_id,
                                                      blocks=tuple(sorted(set(blocks), key=lambda k: (k == -1, k))),
                                                      epochs=clf_epochs, lr=clf_lr)
                    fn = functools.partial(classifier.train, lm=lm, data=labelled)
                    st.session_state[f"{P}_clf_run_id"] = jobs.submit(cfg, fn, owner=ui.session_id(),
                                                                      label="Classifier")
        sft_ui.classifier_panel(st.session_state[f"{P}_clf_run_id"])
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


with tab_sft:
    instruction_tab()
with tab_clf:
    classifier_tab()
