"""Does the lecture's claim hold here? The claims each lab demonstrates, their criteria, and pure verdict functions.

Every criterion is a plain function: measured figures in, a `Verdict` out (holds / does not hold / not measured
yet). The lessons benchmark (bench/bench_lessons.py) feeds them the figures of the page's default run; the pages
feed them the figures of the user's latest run, so the box next to an experiment is computed, never typed.
A figure that is missing (a run that failed or was stopped) gives "not measured yet" with the reason, never a
guessed verdict.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence


HOLDS, FAILS, NOT_MEASURED = "holds", "does not hold", "not measured yet"


@dataclass(frozen=True)
class Claim:
    """A lecture claim the app measures: where it is shown, what it says, and the criterion that decides it."""
    id: str
    page: str
    statement: str  # the lecture's claim, in its words
    criterion: str  # what is measured and when it counts as holding
    scale_note: str = ""  # one honest sentence where a toy run differs from the paper's scale


@dataclass
class Verdict:
    """The outcome of measuring one claim: HOLDS, FAILS or NOT_MEASURED, its headline figure, every number
    behind it, the reason when it does not hold, and the seconds the measurement took."""
    claim: str  # a Claim id
    verdict: str  # HOLDS, FAILS or NOT_MEASURED
    figure: str  # the headline figure, one line
    figures: dict = field(default_factory=dict)  # every measured number behind it
    reason: str = ""  # why it does not hold, or why it was not measured
    seconds: float | None = None

    def to_json(self) -> dict:
        """The verdict with its claim's statement and criterion, as JSON data."""
        c = CLAIMS.get(self.claim)
        return {"id": self.claim, "statement": c.statement if c else "", "criterion": c.criterion if c else "",
                **{k: v for k, v in asdict(self).items() if k != "claim"}}

    @classmethod
    def from_json(cls, d: Mapping) -> "Verdict":
        """A verdict back from `to_json` output (the statement and criterion come from CLAIMS again)."""
        return cls(d["id"], d["verdict"], d.get("figure", ""), dict(d.get("figures") or {}), d.get("reason", ""),
                   d.get("seconds"))


def not_measured(claim_id: str, reason: str, **figures) -> Verdict:
    """A NOT_MEASURED verdict with the reason (and any figures measured before it stopped)."""
    return Verdict(claim_id, NOT_MEASURED, "—", figures, reason)


CLAIMS: dict[str, Claim] = {c.id: c for c in (
    Claim("C1", "Data mixtures", "GPT-3's mixture: the epochs per source follow from weight × budget / size.",
          "computed epochs (weight × 300B / size, weights renormalised) match Brown et al. 2020 Table 2.2 within 5% "
          "(the printed figures' rounding) for every source",
          "The table's weights are rounded to whole percent and add to 101%; two rows do not follow from it."),
    Claim("C2", "Data mixtures", "Labels are the inputs shifted by one: position t is trained to predict token t+1.",
          "the model's own loss with labels = input_ids equals the mean of the per-position table (−ln p(token "
          "t+1 | tokens ≤ t)) within 1e-3 nats, and scoring without the shift gives a different loss"),
    Claim("C3", "Data mixtures", "Few examples and many epochs overfit: validation loss turns up while training "
          "loss keeps falling.",
          "on the repeated domain, the last validation loss is at least 0.02 nats above its minimum while the "
          "training loss at the end is below its value at that minimum",
          "A byte-level GPT of ~0.2M parameters on 4 KB of text; real overfitting shows after far more tokens."),
    Claim("C4", "Fine-tuning", "LIMA: a small set of examples teaches a format.",
          "format score ≥ 80% after training, from ≤ 20% before; in a dataset-size sweep the smallest size that "
          "reaches it decides, and every size's format score and validation loss are reported",
          "LIMA fine-tuned a 65B model on 1,000 examples; here SmolLM2-135M with LoRA and 8 scored prompts."),
    Claim("C5", "Fine-tuning", "Training more blocks costs more time.",
          "classifier seconds per epoch rise with the number of trainable blocks: the most blocks take ≥ 1.5× the "
          "head-only time, and no step down is larger than 10% (timing noise)",
          "SmolLM2-135M on about a hundred short messages: seconds, not the hours of a full fine-tune."),
    Claim("C6", "LoRA", "LoRA rank 1–2 does about as well as rank 8 on the task.",
          "the best task score of rank 1 and 2 is within 0.05 of rank 8's (or above it)"),
    Claim("C7", "LoRA", "Adapting W_q and W_v beats W_q alone at an equal trainable budget.",
          "at the parameter count of rank 8 on W_q alone, W_q + W_v (its rank chosen to spend the same budget) "
          "has a lower held-out loss and a task score at least as high (the task score, a format check on 8 "
          "prompts, ties when both runs learn the format, so the loss decides)",
          "Hu et al. 2021 Table 5 compare accuracy on WikiSQL and MultiNLI with GPT-3; here it is one small task, "
          "one seed and 30 steps."),
    Claim("C8", "Preference tuning", "DPO: the reward margin and preference accuracy grow during training.",
          "mean reward margin and preference accuracy over the last 5 training steps > over the first 5 (whether "
          "the chosen reward falls is reported, not required)",
          "30 steps of 2 pairs on a 135M model with LoRA; the paper tunes billion-parameter models on tens of "
          "thousands of pairs, and the chosen reward often falls there too (both log-probs drop, the rejected faster)."),
    Claim("C9", "RAG", "RAG beats no-RAG on questions about the documents.",
          "over the bundled question set, RAG's contains-the-answer rate minus no-RAG's has a 95% interval above 0, "
          "and hybrid retrieval's hit@k is not below dense retrieval's",
          "30 questions and a 135M reader: the interval is wide, and how many sentences the reader is handed moves the "
          "RAG score by up to 20 points (tick the whole-chunks box to see it)."),
    Claim("C10", "Linear vs full attention", "Softmax attention cost grows ~4× per doubling of length (slope ≈ 2); "
          "linear attention ~2× (slope ≈ 1).",
          "log-log slope of prefill time over the 3 longest lengths: softmax within 2 ± 0.4, linear within 1 ± 0.4",
          "Measured on this CPU up to 8192 tokens with 2 heads. Between 1024 and 2048 tokens softmax jumps far more "
          "than 4× as its T×T scores fall out of the CPU caches, so the slope is fitted where they no longer fit; "
          "GPU kernels (FlashAttention) shift the constants, not the exponents."),
    Claim("C11", "Linear vs full attention", "MQAR: softmax attention recalls every pair; a fixed-size state runs out "
          "as the number of pairs grows.",
          "softmax accuracy ≥ 90% at every number of pairs, and each fixed-state mixer loses ≥ 20 points from the "
          "fewest to the most pairs"),
    Claim("C11b", "Linear vs full attention", "Palindrome: softmax attention reverses a sequence of any length; a "
          "fixed-size state runs out as the sequence grows.",
          "held-out accuracy over every reversed token: softmax ≥ 90% at every length, and each fixed-state mixer "
          "loses ≥ 20 points from the shortest to the longest length",
          "The fixed-state mixers are still improving when the default run ends; a longer run closes most of the gap "
          "at 32 tokens but not at 64, where 64 tokens share the 32 key directions of a 32-wide layer's state."),
    Claim("C11c", "Linear vs full attention", "State tracking: parity needs negative eigenvalues — DeltaNet with "
          "β ∈ (0, 2) tracks it, DeltaNet with β ∈ (0, 1) and linear attention cannot (Grazzi et al. 2025).",
          "held-out accuracy on the second half of each sequence (the first positions are within the short "
          "convolution's reach): DeltaNet with β ∈ (0, 2) ≥ 90% at every length; DeltaNet with β ∈ (0, 1) (and "
          "linear attention, when in the sweep) ≤ 60% at the longest length (chance 50%); softmax is reported, "
          "not judged",
          "One layer and a few hundred steps on 8–32 bits. Trained three times longer, DeltaNet with β ∈ (0, 1) and "
          "linear attention approximate most of the 16-bit second half but stay at chance at 32 bits: without a "
          "negative eigenvalue there is no exact solution, only ones that break as sequences grow (Grazzi et al. "
          "also test length extrapolation, which this sweep does not)."),
    Claim("C12", "Linear vs full attention", "A 3:1 linear:full hybrid keeps 75% less KV cache.",
          "KV cache (per-token part) of a 3:1 hybrid vs the same depth of full attention is 75% ± 0.5 pt smaller; "
          "the fixed recurrent state is reported next to it",
          "Computed from published layer shapes (Kimi Linear), not measured on a running 48B model."),
    Claim("C13", "Evaluation", "An LLM judge has a position bias that you can measure on pairs with a known answer.",
          "share of known pairs where the judge picked the same slot in both orders, with its 95% (Wilson) interval "
          "above 0",
          "The judge is a 135M model; GPT-4-class judges show far smaller (but still non-zero) position bias."),
    Claim("C14", "Evaluation", "Contamination inflates a score.",
          "after a brief fine-tune on the evaluation items the score rises ≥ 10 points over a clean run, and the "
          "n-gram detector flags the contaminated run but not the clean one"),
    Claim("M4", "Data mixtures", "Quality beats quantity at equal compute: filtering noisy text lowers the loss on "
          "clean text.",
          "validation loss on clean text at equal steps is lower with the quality filter than without"),
)}


# ---------------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------------
def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (well-behaved at 0% and 100%, unlike p ± 1.96·se)."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _finite(*values) -> bool:
    return all(v is not None and isinstance(v, (int, float)) and math.isfinite(v) for v in values)


# ---------------------------------------------------------------------------------------------------------------
# Criteria (figures in, verdict out)
# ---------------------------------------------------------------------------------------------------------------
def mixture_epochs(rows: Sequence[Mapping], tolerance: float = 0.05, source: str = "") -> Verdict:
    """C1. rows: labs.mixtures.mixture_table rows (source, epochs, published epochs)."""
    compared = [r for r in rows if r.get("published epochs") is not None]
    if not compared:
        return not_measured("C1", "no source has a published epochs figure to compare with")
    off = [r for r in compared if abs(r["epochs"] - r["published epochs"]) > tolerance * max(r["published epochs"], 1e-9)]
    figures = {r["source"]: {"computed": round(r["epochs"], 3), "published": r["published epochs"]} for r in compared}
    if source:
        figures["published_source"] = source
    figure = f"{len(compared) - len(off)} of {len(compared)} sources match within {tolerance:.0%}"
    if off:
        return Verdict("C1", FAILS, figure, figures, "; ".join(
            f"{r['source']}: computed {r['epochs']:.2f}, published {r['published epochs']}" for r in off)
            + ". The published weights are rounded and add to 101%, so these rows cannot follow from them.")
    return Verdict("C1", HOLDS, figure, figures)


def labels_shifted(table_losses: Sequence[float], model_loss: float, unshifted_loss: float,
                   tolerance: float = 1e-3) -> Verdict:
    """C2. table_losses: −ln p(token t+1 | ≤ t) per position; model_loss: the model's own loss with
    labels = input_ids; unshifted_loss: the mean of −ln p(token t | ≤ t), i.e. the same tokens without the shift."""
    if not table_losses or not _finite(model_loss, unshifted_loss, *table_losses):
        return not_measured("C2", "no finite losses were measured")
    mean = sum(table_losses) / len(table_losses)
    figures = {"tokens": len(table_losses) + 1, "table_mean_loss": mean, "model_loss": model_loss,
               "unshifted_loss": unshifted_loss}
    figure = f"model loss {model_loss:.4f} vs shifted-table mean {mean:.4f} (unshifted: {unshifted_loss:.2f})"
    if abs(model_loss - mean) > tolerance:
        return Verdict("C2", FAILS, figure, figures, "the model's loss does not equal the shifted table's mean")
    if abs(unshifted_loss - model_loss) <= 0.1:
        return Verdict("C2", FAILS, figure, figures, "scoring without the shift gives the same loss: the check "
                       "cannot tell the shift apart")
    return Verdict("C2", HOLDS, figure, figures)


def overfitting(steps: Sequence[int], train: Sequence[float], val: Sequence[float], min_rise: float = 0.02) -> Verdict:
    """C3. Evaluation points of one domain: train and validation loss at each step."""
    pts = [(s, t, v) for s, t, v in zip(steps, train, val) if _finite(t, v)]
    if len(pts) < 3:
        return not_measured("C3", "fewer than 3 evaluation points with both losses")
    best = min(range(len(pts)), key=lambda i: pts[i][2])
    s_best, t_best, v_best = pts[best]
    s_end, t_end, v_end = pts[-1]
    figures = {"val_min": v_best, "val_min_step": s_best, "val_end": v_end, "train_at_val_min": t_best,
               "train_end": t_end, "steps": s_end}
    figure = (f"validation {v_best:.3f} at step {s_best} → {v_end:.3f} at step {s_end}; "
              f"training {t_best:.3f} → {t_end:.3f}")
    if v_end - v_best >= min_rise and t_end < t_best:
        return Verdict("C3", HOLDS, figure, figures)
    why = ("validation loss did not turn up" if v_end - v_best < min_rise else "training loss did not keep falling")
    return Verdict("C3", FAILS, figure, figures, why)


def small_set_teaches_format(before: float, after: float, examples: int) -> Verdict:
    """C4. Format score (0..1) before and after fine-tuning on `examples` examples."""
    if not _finite(before, after):
        return not_measured("C4", "no format score was measured")
    figures = {"format_before": before, "format_after": after, "examples": examples}
    figure = f"format {before:.0%} → {after:.0%} with {examples} examples"
    ok = after >= 0.8 and before <= 0.2
    return Verdict("C4", HOLDS if ok else FAILS, figure, figures, "" if ok else "the format score did not go from "
                   "≤ 20% to ≥ 80%")


def cost_grows_with_blocks(seconds_per_epoch: Mapping[int, float], min_ratio: float = 1.5,
                           noise: float = 0.10) -> Verdict:
    """C5. {trainable blocks (0 = head only): seconds per epoch}."""
    pts = sorted((int(k), v) for k, v in seconds_per_epoch.items() if _finite(v))
    if len(pts) < 2:
        return not_measured("C5", "fewer than two blocks settings finished")
    ratio = pts[-1][1] / max(pts[0][1], 1e-9)
    figures = {f"blocks_{k}": v for k, v in pts} | {"ratio": ratio}

    def seconds(v: float) -> str:
        return f"{v:.2f} s" if v >= 0.01 else f"{v * 1000:.1f} ms"  # head only reuses cached features: milliseconds

    figure = " · ".join(f"{'head' if k == 0 else f'+{k}'}: {seconds(v)}" for k, v in pts) + f" per epoch ({ratio:.0f}×)"
    drops = [(a, b) for a, b in zip(pts, pts[1:]) if b[1] < a[1] * (1 - noise)]
    if ratio >= min_ratio and not drops:
        return Verdict("C5", HOLDS, figure, figures)
    why = (f"the most blocks took only {ratio:.1f}× the fewest" if ratio < min_ratio else
           f"time fell from {drops[0][0][0]} to {drops[0][1][0]} blocks")
    return Verdict("C5", FAILS, figure, figures, why)


def low_rank_suffices(score_by_rank: Mapping[int, float], tolerance: float = 0.05,
                      losses: Mapping[int, float] | None = None) -> Verdict:
    """C6. {LoRA rank: task score}; needs rank 8 and rank 1 or 2. losses: {rank: held-out loss}, reported."""
    low = [score_by_rank[r] for r in (1, 2) if r in score_by_rank and _finite(score_by_rank[r])]
    if 8 not in score_by_rank or not _finite(score_by_rank[8]) or not low:
        return not_measured("C6", "the sweep needs finished runs at rank 8 and at rank 1 or 2")
    best, r8 = max(low), score_by_rank[8]
    figures = {"best_low_rank": best, "rank_8": r8, "task_score": dict(score_by_rank)}
    figure = f"best of rank 1–2: {best:.2f} vs rank 8: {r8:.2f}"
    if losses:
        figures["val_loss"] = dict(losses)
        figure += " (held-out loss " + ", ".join(f"r={r}: {v:.3f}" for r, v in sorted(losses.items())) + ")"
    ok = best >= r8 - tolerance
    return Verdict("C6", HOLDS if ok else FAILS, figure, figures, "" if ok else f"rank 8 is ahead by {r8 - best:.2f}")


def qv_beats_q(score_qv: float, score_q: float, loss_qv: float | None = None, loss_q: float | None = None,
               params_qv: int | None = None, params_q: int | None = None) -> Verdict:
    """C7. Task scores (and held-out losses) of W_q+W_v and W_q alone at an equal trainable budget.
    With losses: holds when W_q+W_v's loss is lower and its score is not; without: when its score is higher."""
    if not _finite(score_qv, score_q):
        return not_measured("C7", "a score is missing")
    figures = {"qv": score_qv, "q": score_q}
    figure = f"task score W_q+W_v {score_qv:.2f} vs W_q {score_q:.2f}"
    if params_qv and params_q:
        figures.update(params_qv=params_qv, params_q=params_q)
    if _finite(loss_qv, loss_q):
        figures.update(loss_qv=loss_qv, loss_q=loss_q)
        figure += f"; held-out loss {loss_qv:.3f} vs {loss_q:.3f}"
        if params_qv and params_q:
            figure += f" ({params_qv:,} vs {params_q:,} trainable)"
        reasons = ([] if loss_qv < loss_q else ["W_q alone reached a held-out loss at least as low"]) + \
                  ([] if score_qv >= score_q else ["W_q alone scored higher on the task"])
        return Verdict("C7", FAILS if reasons else HOLDS, figure, figures, "; ".join(reasons))
    ok = score_qv > score_q
    return Verdict("C7", HOLDS if ok else FAILS, figure, figures, "" if ok else "W_q alone scored at least as well")


def dpo_learns(margins: Sequence[float], accuracies: Sequence[float], chosen_rewards: Sequence[float]) -> Verdict:
    """C8. Per-evaluation reward margin, preference accuracy and chosen reward, in step order."""
    if len(margins) < 2 or len(accuracies) < 2:
        return not_measured("C8", "fewer than two evaluation points")
    figures = {"margin_first": margins[0], "margin_last": margins[-1], "acc_first": accuracies[0],
               "acc_last": accuracies[-1]}
    figure = f"margin {margins[0]:.2f} → {margins[-1]:.2f}, accuracy {accuracies[0]:.0%} → {accuracies[-1]:.0%}"
    if len(chosen_rewards) >= 2:
        figures["chosen_reward_fell"] = fell = chosen_rewards[-1] < chosen_rewards[0]
        figures.update(chosen_reward_first=chosen_rewards[0], chosen_reward_last=chosen_rewards[-1])
        figure += (f"; the chosen reward {'fell' if fell else 'rose'} ({chosen_rewards[0]:+.2f} → "
                   f"{chosen_rewards[-1]:+.2f})")
    ok = margins[-1] > margins[0] and accuracies[-1] > accuracies[0]
    return Verdict("C8", HOLDS if ok else FAILS, figure, figures, "" if ok else "margin or accuracy did not grow")


def rag_beats_no_rag(rag: Sequence[float], no_rag: Sequence[float], hit_hybrid: float | None = None,
                     hit_dense: float | None = None) -> Verdict:
    """C9. Paired per-question scores (0/1 contains-the-answer) with and without retrieval; hit@k per mode."""
    if not rag or len(rag) != len(no_rag):
        return not_measured("C9", "no paired scores")
    diffs = [a - b for a, b in zip(rag, no_rag)]
    n, mean = len(diffs), sum(diffs) / len(diffs)
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n) if n > 1 else float("nan")
    low = mean - 1.96 * se
    figures = {"rag": sum(rag) / n, "no_rag": sum(no_rag) / n, "difference": mean, "ci_low": low, "n": n}
    figure = f"RAG {sum(rag) / n:.0%} vs no-RAG {sum(no_rag) / n:.0%} (difference {mean:+.0%}, 95% low {low:+.0%})"
    reasons = []
    if not (math.isfinite(low) and low > 0):
        reasons.append("the 95% interval of the difference reaches 0")
    if hit_hybrid is not None and hit_dense is not None:
        figures.update(hit_hybrid=hit_hybrid, hit_dense=hit_dense)
        figure += f"; hit@k hybrid {hit_hybrid:.0%} vs dense {hit_dense:.0%}"
        if hit_hybrid < hit_dense:
            reasons.append("hybrid retrieval found fewer right documents than dense")
    return Verdict("C9", FAILS if reasons else HOLDS, figure, figures, "; ".join(reasons))


def attention_slopes(softmax_slope: float | None, linear_slope: float | None, tolerance: float = 0.4,
                     times: Mapping[str, Sequence[tuple[int, float]]] | None = None) -> Verdict:
    """C10. Log-log slopes of prefill time vs length (labs.attention.cost.fit_slope).

    times: {variant: [(length, ms), ...]}. Doing more work cannot take less time, so a time that falls as the
    length doubles means the machine was busy with something else: the slopes are noise, and the claim is
    reported as not measured rather than judged."""
    if not _finite(softmax_slope, linear_slope):
        return not_measured("C10", "a slope is missing (too few lengths were timed)")
    for variant, pts in (times or {}).items():
        pts = sorted(pts)
        for (t0, a), (t1, b) in zip(pts, pts[1:]):
            if b < a:
                return not_measured("C10", f"the timings are noise: {variant} took {a:.1f} ms at {t0} tokens but "
                                           f"{b:.1f} ms at {t1}; the CPU was busy with other work — rerun on an "
                                           "idle machine", softmax_slope=softmax_slope, linear_slope=linear_slope)
    figures = {"softmax_slope": softmax_slope, "linear_slope": linear_slope,
               "softmax_per_doubling": 2 ** softmax_slope, "linear_per_doubling": 2 ** linear_slope}
    figure = (f"softmax slope {softmax_slope:.2f} ({2 ** softmax_slope:.1f}× per doubling), "
              f"linear {linear_slope:.2f} ({2 ** linear_slope:.1f}×)")
    reasons = []
    if abs(softmax_slope - 2) > tolerance:
        reasons.append(f"softmax slope {softmax_slope:.2f} is not within 2 ± {tolerance}")
    if abs(linear_slope - 1) > tolerance:
        reasons.append(f"linear slope {linear_slope:.2f} is not within 1 ± {tolerance}")
    return Verdict("C10", FAILS if reasons else HOLDS, figure, figures, "; ".join(reasons))


def recall_vs_state(accuracy: Mapping[str, Mapping[int, float]], full: str = "softmax", min_drop: float = 0.2) -> Verdict:
    """C11. {mixer: {number of key-value pairs: accuracy}}."""
    if full not in accuracy or len(accuracy) < 2 or any(len(v) < 2 for v in accuracy.values()):
        return not_measured("C11", "the sweep needs softmax and a fixed-state mixer at two or more pair counts")
    reasons = []
    if min(accuracy[full].values()) < 0.9:
        reasons.append(f"{full} falls to {min(accuracy[full].values()):.0%}")
    drops = {}
    for mixer, acc in accuracy.items():
        if mixer == full:
            continue
        pairs = sorted(acc)
        drops[mixer] = acc[pairs[0]] - acc[pairs[-1]]
        if drops[mixer] < min_drop:
            reasons.append(f"{mixer} loses only {drops[mixer]:.0%}")
    figure = f"{full} min {min(accuracy[full].values()):.0%}; drops " + ", ".join(f"{m} {d:.0%}" for m, d in drops.items())
    return Verdict("C11", FAILS if reasons else HOLDS, figure, {"accuracy": {m: dict(a) for m, a in accuracy.items()}},
                   "; ".join(reasons))


def reversal_vs_state(accuracy: Mapping[str, Mapping[int, float]], full: str = "softmax",
                      min_drop: float = 0.2) -> Verdict:
    """C11b. {mixer: {tokens to reverse: accuracy}} from the palindrome length sweep."""
    if full not in accuracy or len(accuracy) < 2 or any(len(v) < 2 for v in accuracy.values()):
        return not_measured("C11b", "the sweep needs softmax and a fixed-state mixer at two or more lengths")
    low = min(accuracy[full].values())
    reasons = [] if low >= 0.9 else [f"{full} falls to {low:.0%}"]
    ends = {}
    for mixer, acc in accuracy.items():
        if mixer != full:
            n = sorted(acc)
            ends[mixer] = (acc[n[0]], acc[n[-1]])
            if acc[n[0]] - acc[n[-1]] < min_drop:
                reasons.append(f"{mixer} loses only {acc[n[0]] - acc[n[-1]]:.0%}")
    figure = f"{full} min {low:.0%}; " + ", ".join(f"{m} {a:.0%} → {b:.0%}" for m, (a, b) in ends.items())
    return Verdict("C11b", FAILS if reasons else HOLDS, figure,
                   {"accuracy": {m: dict(a) for m, a in accuracy.items()}}, "; ".join(reasons))


def parity_needs_negative_eigenvalues(accuracy: Mapping[str, Mapping[int, float]], negative: str = "deltanet_neg",
                                      positive: Sequence[str] = ("deltanet", "linear"), min_high: float = 0.9,
                                      max_low: float = 0.6) -> Verdict:
    """C11c. {mixer: {sequence length: accuracy on the second half of each sequence}} from the parity sweep.
    `positive` mixers (eigenvalues in [0, 1]) are judged when present; DeltaNet with β ∈ (0, 1) must be."""
    if not accuracy.get(negative) or not accuracy.get(positive[0]):
        return not_measured("C11c", "the sweep needs DeltaNet with β ∈ (0, 2) and DeltaNet with β ∈ (0, 1)")
    longest = max(accuracy[negative])
    judged = [m for m in positive if longest in accuracy.get(m, {})]
    if positive[0] not in judged:
        return not_measured("C11c", f"DeltaNet with β ∈ (0, 1) was not scored at {longest} bits")
    reasons = []
    if min(accuracy[negative].values()) < min_high:
        reasons.append(f"{negative} reaches only {min(accuracy[negative].values()):.0%}")
    reasons += [f"{m} reaches {accuracy[m][longest]:.0%}" for m in judged if accuracy[m][longest] > max_low]
    shown = [negative] + judged + [m for m in accuracy if m not in judged and m != negative]
    figure = f"at {longest} bits: " + ", ".join(f"{m} {accuracy[m][longest]:.0%}" for m in shown
                                                 if longest in accuracy[m])
    return Verdict("C11c", FAILS if reasons else HOLDS, figure,
                   {"accuracy": {m: dict(a) for m, a in accuracy.items()}, "longest": longest}, "; ".join(reasons))


def hybrid_cache(kv_reduction: float, total_reduction: float, context: int, linear: int = 3, full: int = 1,
                 tolerance: float = 0.005) -> Verdict:
    """C12. Reductions of a linear:full hybrid vs full attention of the same depth, at `context` tokens."""
    if not _finite(kv_reduction, total_reduction):
        return not_measured("C12", "no cache sizes were computed")
    expected = linear / (linear + full)
    figures = {"kv_reduction": kv_reduction, "total_reduction": total_reduction, "context": context,
               "expected": expected}
    figure = (f"{kv_reduction:.1%} less KV cache ({total_reduction:.2%} less with the fixed states) at "
              f"{context:,} tokens, {linear}:{full} hybrid")
    ok = abs(kv_reduction - 0.75) <= tolerance
    return Verdict("C12", HOLDS if ok else FAILS, figure, figures, "" if ok else
                   f"the reduction is {kv_reduction:.1%}, not 75%")


def judge_position_bias(same_slot: int, pairs: int) -> Verdict:
    """C13. same_slot: known pairs where the judge chose the same slot in both orders (its verdict followed the
    position, not the content); pairs: known pairs judged in both orders."""
    if pairs <= 0:
        return not_measured("C13", "no pairs were judged")
    low, high = wilson_interval(same_slot, pairs)
    rate = same_slot / pairs
    figures = {"position_bias": rate, "ci_low": low, "ci_high": high, "pairs": pairs, "same_slot": same_slot}
    figure = f"position bias {rate:.0%} of {pairs} pairs (95% interval {low:.0%}–{high:.0%})"
    ok = low > 0
    return Verdict("C13", HOLDS if ok else FAILS, figure, figures, "" if ok else
                   "the interval reaches 0: no position bias was detected on these pairs")


def contamination_inflates(clean: float, contaminated: float, flagged_contaminated: int,
                           flagged_clean: int, min_jump: float = 0.10) -> Verdict:
    """C14. Scores of a clean and a contaminated run, and how many items the n-gram detector flagged in each."""
    if not _finite(clean, contaminated):
        return not_measured("C14", "a score is missing")
    jump = contaminated - clean
    figures = {"clean": clean, "contaminated": contaminated, "jump": jump, "flagged_contaminated": flagged_contaminated,
               "flagged_clean": flagged_clean}
    figure = f"score {clean:.0%} → {contaminated:.0%} ({jump:+.0%}); flagged {flagged_contaminated} vs {flagged_clean}"
    reasons = []
    if jump < min_jump:
        reasons.append(f"the score rose only {jump:+.0%}")
    if not flagged_contaminated or flagged_clean:
        reasons.append("the detector did not separate the runs")
    return Verdict("C14", FAILS if reasons else HOLDS, figure, figures, "; ".join(reasons))


def quality_filter_helps(val_filtered: float, val_unfiltered: float) -> Verdict:
    """M4. Validation loss on clean text at equal steps, with and without the quality filter."""
    if not _finite(val_filtered, val_unfiltered):
        return not_measured("M4", "a validation loss is missing")
    ok = val_filtered < val_unfiltered
    return Verdict("M4", HOLDS if ok else FAILS, f"clean-text loss {val_unfiltered:.3f} → {val_filtered:.3f} with the "
                   "filter", {"filtered": val_filtered, "unfiltered": val_unfiltered},
                   "" if ok else "the filtered run's loss is not lower")
