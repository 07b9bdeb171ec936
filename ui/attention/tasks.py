"""The Synthetic tasks tab of the linear-vs-full attention page: the task run's settings and its accuracy per mixer,
the MQAR pairs sweep's chart and C11 box, the palindrome and parity length sweeps (C11b, C11c), and how to read the
results honestly."""
from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from labs.attention import figures, model, sweep, tasks
from labs.attention.mixers import VARIANTS
from labs.runs import jobs, lessons
from ui.lessons import claim_box


P = "attn"


def sweep_extra(run: jobs.Run) -> None:
    """MQAR accuracy vs pairs, one curve per mixer, and the C11 box computed from the run."""
    acc = sweep.latest_accuracy(run.metrics, run.config["mixers"], run.config["pairs"])
    if acc:
        chance = sweep.PairsSweepConfig(pairs=tuple(run.config["pairs"])).task(min(run.config["pairs"])).chance
        st.plotly_chart(figures.pairs_sweep(acc, chance), key=f"{P}_sw_chart_{run.id}_{len(run.metrics)}")
    claim_box(sweep.verdict(run.status == jobs.DONE, run.metrics, run.config, run.reason or run.status),
              note=f"Toy scale: {run.config['n_layers']} layer(s), {run.config['d_model']} wide, {run.config['steps']} "
                   "steps; the fixed-state mixers also learn more slowly, so part of their fall is training time, "
                   "not only capacity (Zoology trains far longer).")


# The two length sweeps: task -> (default config, claim, button label, chart axis, chart title, the box's note)
LENGTH_SWEEPS = {
    "palindrome": (sweep.PalindromeSweepConfig, "C11b", "Run the palindrome sweep", "tokens to reverse",
                   "Palindrome: reversing longer sequences", ""),
    "parity": (sweep.ParitySweepConfig, "C11c", "Run the parity sweep", "bits (sequence length)",
               "Parity: a running state that must flip",
               "A 1-layer softmax model has no running state either: it averages the bits and cannot read their "
               "parity off the average at long lengths (Hahn 2020)."),
}


def length_sweep(task: str) -> None:
    """C11b / C11c: the palindrome or parity length sweep — controls, Run button, live chart and claim box."""
    make, claim, label, _, title, _ = LENGTH_SWEEPS[task]
    d, k = make(), f"{P}_{task[:3]}"
    st.markdown(f"#### {title}")
    st.caption(f"One {d.n_layers}-layer model per mixer (width {d.d_model} in {d.n_heads} heads, so each fixed state "
               f"is {d.d_model // d.n_heads} × {d.d_model // d.n_heads} per head) trains on a mix of the lengths, "
               f"{d.steps} steps at lr {d.lr:g}; each length is scored on its own held-out set, on "
               f"{d.scored_positions}.")
    c = st.columns(3)
    mixers = c[0].multiselect("Mixers", list(VARIANTS), default=list(d.mixers), format_func=VARIANTS.get,
                              key=f"{k}_mixers", help="Each trains its own model on the same batches. "
                              + ("Keep softmax: the claim compares the fixed-state mixers with it." if task ==
                                 "palindrome" else "Keep both DeltaNets: the claim compares β ∈ (0, 2) with (0, 1)."))
    lengths = c[1].multiselect("Lengths", [4, 8, 16, 32, 48, 64], default=list(d.lengths), key=f"{k}_lengths",
                               help="Tokens to reverse (the sequence is twice as long)" if task == "palindrome"
                               else "Bits per sequence; the second half of each is scored.")
    steps = c[2].slider("Steps", 50, 1000, d.steps, 50, key=f"{k}_steps",
                        help="Training steps per mixer (every mixer trains on the same batches).")
    if st.button(label, key=f"{k}_go", type="primary",
                 help=f"Trains every mixer in the background queue; the chart fills in every {d.eval_every} steps."):
        with ui.friendly_errors(f"The {task} sweep"):
            config = make(mixers=tuple(mixers), lengths=tuple(sorted(int(n) for n in lengths)), steps=int(steps))
            st.session_state[f"{k}_run"] = jobs.submit(config, sweep.run_lengths, owner=ui.session_id(),
                                                       label=f"{task.capitalize()} length sweep")
    run_id = st.session_state.get(f"{k}_run")
    if run_id:
        ui.run_panel(run_id, [("Loss", mixer_metrics(jobs.get(run_id), "loss"))], prefix=k, smoothing=0.6,
                     extra=length_sweep_extra)
    else:
        claim_box(lessons.not_measured(claim, f"no {task} sweep in this session yet: press '{label}'"))


def length_sweep_extra(run: jobs.Run) -> None:
    """Accuracy vs length, one curve per mixer with chance dotted, and the claim box computed from the run."""
    task = run.config["task"]
    _, _, _, x, title, note = LENGTH_SWEEPS[task]
    acc = sweep.latest_accuracy(run.metrics, run.config["mixers"], run.config["lengths"])
    if acc:
        chance = tasks.TaskConfig(name=task, vocab_size=run.config["vocab_size"]).chance
        st.plotly_chart(figures.size_sweep(acc, chance, x=x, y="held-out accuracy", title=title),
                        key=f"{P}_{task[:3]}_chart_{run.id}_{len(run.metrics)}")
    claim_box(sweep.length_verdict(run.status == jobs.DONE, run.metrics, run.config, run.reason or run.status),
              note=note)


def train_extra(run: jobs.Run) -> None:
    """A finished task run: accuracy per mixer against chance, with state size and parameters."""
    if run.status != jobs.DONE or not run.summary.get("accuracy"):
        return
    s = run.summary
    left, right = st.columns(2)
    left.plotly_chart(figures.accuracy_bars(s["accuracy"], s["chance"]), key=f"{P}_acc_bars_{run.id}")
    right.dataframe(pd.DataFrame([{"mixer": VARIANTS[n], "accuracy": s["accuracy"][n],
                                   "decoding state (numbers, all layers)": s["state_numbers"][n],
                                   "parameters": s["params"][n]} for n in s["accuracy"]]),
                    hide_index=True, width="stretch")


def task_settings() -> dict:
    """The widgets of a task run, as model.TrainConfig fields."""
    c = st.columns(4)
    task = c[0].selectbox("Task", list(tasks.TASKS), format_func=tasks.TASKS.get, key=f"{P}_task",
                          help="What the models must learn.")
    mixers = c[1].multiselect("Mixers", list(VARIANTS), default=list(model.TrainConfig().mixers),
                              format_func=VARIANTS.get, key=f"{P}_mixers",
                              help="Each trains its own model, one step each in turn. More mixers = longer run.")
    pairs = c[2].slider("MQAR key–value pairs", 1, 14, 6, key=f"{P}_pairs",
                        help="MQAR only: pairs to remember. The sequence is 4 × pairs tokens long.")
    length = c[3].slider("Length (state tracking / copy)", 4, 48, 16, 4, key=f"{P}_length",
                         help="Parity/permutation: sequence length. Copy/palindrome: tokens to copy.")
    c = st.columns(5)
    steps = c[0].slider("Steps", 20, 1000, 200, 20, key=f"{P}_steps",
                        help="Training steps per mixer (the mixers train side by side on the same batches).")
    lr = c[1].select_slider("Learning rate", [1e-3, 3e-3, 1e-2, 3e-2], value=1e-2, key=f"{P}_lr",
                            help="AdamW with a 10% warm-up. Tiny models on synthetic tasks like it high.")
    d_model = c[2].selectbox("Width d", [32, 64, 128], index=1, key=f"{P}_d",
                             help="Model width; the recurrent state per head is (d/heads)².")
    n_heads = c[3].selectbox("Heads", [1, 2, 4], index=1, key=f"{P}_heads", help="d must divide by the heads.")
    seed = c[4].number_input("Seed", 0, 10_000, 0, key=f"{P}_seed", help="Same settings and seed replay the run.")
    c = st.columns(3)
    window = c[0].slider("Sliding window W", 2, 64, 8, key=f"{P}_window",
                         help="Sliding-window mixer only: keys each query sees.")
    power = c[1].selectbox("Power attention p", [2, 4], key=f"{P}_power",
                           help="Power mixer only: even degree; state C(K+p−1, p) × K per head.")
    group = c[2].selectbox("Permutation group S_n", [3, 4, 5], key=f"{P}_group",
                           help="Permutation task only: S_3 has 6 elements, S_5 has 120 (the hard, non-solvable one).")
    return dict(task=task, mixers=tuple(mixers), num_kv_pairs=int(pairs), length=int(length), group_size=int(group),
                d_model=int(d_model), n_heads=int(n_heads), window=int(window), power=int(power), steps=int(steps),
                lr=float(lr), seed=int(seed))


def mixer_metrics(run: jobs.Run | None, prefix: str) -> list[str]:
    """The run's per-mixer metric names (`acc_softmax`, …); [] while the run is unknown."""
    return [f"{prefix}_{m}" for m in (run.config.get("mixers", []) if run else [])]


HONEST_READING = (
    "**Reading the results honestly.** With the two-layer defaults above, a single run at 4–6 pairs can show "
    "linear variants level with or ahead of softmax: the tiny softmax model needs more steps to form its "
    "look-up circuit. The **pairs sweep** is set up so the gap the Zoology paper reports shows (Arora et al. "
    "2024, MQAR figure: at fixed width, fixed-state models fall behind attention as pairs and length grow). On state "
    "tracking the literature points the other way: a recurrence can carry a running parity, transformers "
    "struggle to do so at every length (Hahn 2020), and S_5 composition is out of reach for constant-depth "
    "models (Merrill et al. 2024); DeltaNet with β ∈ (0, 1) cannot represent parity exactly either — it needs "
    "negative eigenvalues (Grazzi et al. 2025), as the parity sweep above shows. One seed, a few hundred steps "
    "and a 2-layer model can mislead both ways: *linear language models are easy (RNNs); good language models are hard* — evaluate "
    "on the problems that matter, at a scale where they show.")
