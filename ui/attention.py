"""Drawing helpers for the linear-vs-full attention page: each variant's equation, source and paper, the mechanism
table, the live cost / pairs-sweep / task views of a run, the memory figures and what a trained model does inside.
The operators, cost, memory and tasks live in labs/attention."""
from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

import ui
from labs.core import charts
from labs.runs import jobs
from labs.runs import lessons
from labs.attention import cost, delta, figures, linear, memory, model, probe, softmax, sweep, tasks
from labs.attention.mixers import LINEAR_FAMILY, VARIANTS, DeltaMixer, MixerConfig, build_mixer, state_numbers
from ui.lessons import claim_box, run_claim

P = "attn"

EQUATIONS = {
    "softmax": r"o_t=\sum_{s\le t}\operatorname{softmax}_s\!\left(\tfrac{q_t^\top k_s}{\sqrt{K}}\right)v_s"
               r"\qquad\text{state: all past }k_s,v_s\ (\text{KV cache},\ 2TD)",
    "sliding_window": r"o_t=\sum_{t-W<s\le t}\operatorname{softmax}_s\!\left(\tfrac{q_t^\top k_s}{\sqrt K}\right)v_s"
                      r"\qquad\text{state: the last }W\text{ keys and values}",
    "linear": r"S_t=S_{t-1}+\phi(k_t)v_t^\top,\quad z_t=z_{t-1}+\phi(k_t),\quad "
              r"o_t=\frac{S_t^\top\phi(q_t)}{\phi(q_t)^\top z_t},\quad \phi=\mathrm{elu}+1",
    "deltanet": r"S_t=(I-\beta_t k_t k_t^\top)\,S_{t-1}+\beta_t k_t v_t^\top,\quad o_t=S_t^\top q_t",
    "deltanet_neg": r"S_t=(I-\beta_t k_t k_t^\top)\,S_{t-1}+\beta_t k_t v_t^\top,"
                    r"\quad \beta_t=2\sigma(w_\beta^\top x_t)\in(0,2):\ \text{eigenvalue }1-\beta_t\in(-1,1)",
    "gated_deltanet": r"S_t=\alpha_t\,(I-\beta_t k_t k_t^\top)\,S_{t-1}+\beta_t k_t v_t^\top,"
                      r"\quad \alpha_t\in(0,1)",
    "kda": r"S_t=(I-\beta_t k_t k_t^\top)\,\mathrm{Diag}(\alpha_t)\,S_{t-1}+\beta_t k_t v_t^\top,"
           r"\quad \alpha_t\in(0,1)^K",
    "power": r"o_t=\frac{\sum_{s\le t}(q_t^\top k_s)^p\,v_s}{\sum_{s\le t}(q_t^\top k_s)^p}"
             r"=\frac{S_t^\top\phi_p(q_t)}{\phi_p(q_t)^\top z_t},\quad S\in\mathbb R^{\binom{K+p-1}{p}\times V}",
}
SOURCES = {
    "softmax": (softmax.softmax_attention_parallel, softmax.softmax_attention_recurrent),
    "sliding_window": (softmax.sliding_window_chunked, softmax.softmax_attention_recurrent),
    "linear": (linear.linear_attention_recurrent, linear.linear_attention_chunked),
    "deltanet": (delta.delta_rule_recurrent, delta.delta_rule_chunked),
    "deltanet_neg": (DeltaMixer.gates, delta.delta_rule_recurrent, delta.delta_rule_chunked),
    "gated_deltanet": (delta.delta_rule_recurrent, delta.delta_rule_chunked),
    "kda": (delta.delta_rule_recurrent, delta.delta_rule_chunked),
    "power": (linear.sympow_embedding, linear.power_attention_recurrent, linear.power_attention_chunked),
}
PAPERS = {
    "softmax": "Vaswani et al. 2017, Attention Is All You Need, eq. 1",
    "sliding_window": "Beltagy et al. 2020, Longformer; Child et al. 2019",
    "linear": "Katharopoulos et al. 2020, Transformers are RNNs, eqs. 4–7",
    "deltanet": "Schlag et al. 2021; Yang et al. 2024, Parallelizing Linear Transformers with the Delta Rule",
    "deltanet_neg": "Grazzi et al. 2025, Unlocking State-Tracking in Linear RNNs Through Negative Eigenvalues "
                    "(ICLR 2025)",
    "gated_deltanet": "Yang, Kautz & Hatamizadeh 2025, Gated Delta Networks, eq. 10",
    "kda": "Kimi Team 2025, Kimi Linear: An Expressive, Efficient Attention Architecture (KDA, eq. 1)",
    "power": "Buckman, Gelada & Zhang 2024, Symmetric Power Transformers (Manifest AI)",
}


# -- mechanisms --------------------------------------------------------------------------------------------------------
def mechanism_table() -> None:
    """Decoding state of one layer per variant at 1k and 1M tokens, prefill cost, and the paper."""
    rows = []
    for name in VARIANTS:
        c = MixerConfig(name=name, d_model=1024, n_heads=16, window=4096)
        rows.append({"variant": VARIANTS[name], "state after 1k tokens": f"{state_numbers(c, 1_000):,}",
                     "state after 1M tokens": f"{state_numbers(c, 1_000_000):,}",
                     "prefill cost": "O(T²)" if name == "softmax" else ("O(T·W)" if name == "sliding_window"
                                                                        else "O(T)"),
                     "paper": PAPERS[name]})
    st.caption("Numbers of decoding state in one layer, d = 1024 with 16 heads of 64 (window 4096, power p = 2):")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def recurrent_vs_chunked(variant: str, tokens: int = 40) -> float:
    """Largest |recurrent − chunked| output of one small random mixer on a random sequence (float32 round-off)."""
    torch.manual_seed(0)
    mixer = build_mixer(MixerConfig(name=variant, d_model=32, n_heads=2, window=8, chunk_size=16))
    x = torch.randn(1, tokens, 32)  # (B, T, M)
    with torch.no_grad():
        return (mixer(x) - mixer(x, mode="recurrent")).abs().max().item()


# -- cost on this machine ----------------------------------------------------------------------------------------------
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


# -- memory at long context --------------------------------------------------------------------------------------------
def memory_figures(keys: list[str], context: int, bytes_per: int) -> None:
    """Cache size vs context for the chosen models, and a table at the chosen context with each figure's source."""
    lengths = [int(x) for x in torch.logspace(3, 6, 31).tolist()]
    st.plotly_chart(figures.memory_curves(keys, lengths, bytes_per), key=f"{P}_mem_chart")
    table = pd.DataFrame(memory.table(keys, [context], bytes_per)).drop(columns="context").rename(columns={
        "kv_cache_GiB": "KV cache (GiB)", "state_GiB": "fixed state (GiB)", "total_GiB": "total (GiB)"})
    st.dataframe(table, hide_index=True, width="stretch")


def kimi_published() -> None:
    st.info("**Published (Kimi Team 2025, *Kimi Linear* technical report / README):** up to **75% less KV cache** and "
            "up to **6× decoding throughput** at 1M context; time per output token **1.84 ms vs 11.48 ms** for full "
            "MLA at 1M. The 75% follows from the 3:1 ratio, as computed above; the throughput numbers are theirs, "
            "measured on their GPUs and kernels, not here.")


# -- synthetic tasks ---------------------------------------------------------------------------------------------------
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
                        help="Training steps per mixer. 200 steps × 3 mixers ≈ 1 minute on an idle 2-core CPU.")
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


# -- look inside -------------------------------------------------------------------------------------------------------
@st.cache_resource(max_entries=4, show_spinner=False)
def trained_model(artifacts: str, config, mixer: str):
    """A stored task run's trained model, loaded once (not on every rerun of the page); None if its files are gone."""
    return model.load_trained(artifacts, config, mixer)


def look_inside(lm, task_config, which: str, layer: int, sample: int) -> None:
    """One held-out sequence through a trained model: inputs, labels and predictions, then the state of a linear
    mixer (norm, what it still retrieves) or the attention map of a softmax one."""
    inputs, labels = tasks.generate(task_config, sample + 1, seed=4242)
    inputs, labels = inputs[-1:], labels[-1:]  # (1, T)
    captured = probe.capture(lm, inputs)
    with torch.no_grad():
        pred = lm(inputs).argmax(-1)[0]
    scored = labels[0] != tasks.IGNORE
    shown = " ".join(str(x) if x != tasks.IGNORE else "·" for x in labels[0].tolist())
    st.caption(f"inputs: {' '.join(map(str, inputs[0].tolist()))}  \nlabels: {shown}  \n"
               f"predicted at the scored positions: {' '.join(map(str, pred[scored].tolist()))}")
    if which in LINEAR_FAMILY:
        trace = probe.state_trace(lm, captured, layer)
        left, right = st.columns(2)
        left.plotly_chart(figures.state_norm(trace), key=f"{P}_in_norm")
        right.plotly_chart(figures.retrieval_curves(trace), key=f"{P}_in_retr")
        st.caption("Linear attention only adds, so old keys get buried under new ones; the delta rule "
                   "overwrites what a key maps to; gates (Gated DeltaNet, KDA) decay old content.")
        return
    att = probe.attention_map(lm, captured, layer)  # (H, T, T)
    axis = [f"{i}:{t}" for i, t in enumerate(inputs[0].tolist())]
    heads = st.columns(att.shape[0])
    for h in range(att.shape[0]):
        heads[h].plotly_chart(charts.heatmap(att[h].tolist(), axis, axis, title=f"head {h}", zmin=0, zmax=1,
                                             text_fmt=None, x="key", y="query"), key=f"{P}_in_att_{h}")
    st.caption("Softmax attention keeps every past token and can look any of them up — the KV "
               "cache is the price.")
