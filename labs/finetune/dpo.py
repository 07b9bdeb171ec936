"""Preference tuning with DPO (and its IPO / hinge cousins) on LoRA adapters.

The lesson in one line: instead of fitting a reward model and running RL, push up the log-probability of the
chosen answer and push down the rejected one, *measured relative to a frozen reference model*.

    Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a Reward Model"
      eq. 5   implicit reward   r(x, y) = beta * log pi_theta(y|x) / pi_ref(y|x)   (+ beta log Z(x), cancels)
      eq. 7   L_DPO = -log sigmoid( r(x, y_w) - r(x, y_l) )
      sec. 4  gradient = -beta * sigmoid(r(x, y_l) - r(x, y_w)) * [grad log pi(y_w|x) - grad log pi(y_l|x)]
    Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human Preferences" (IPO), eq. 17
    Zhao et al. 2023, "SLiC-HF: Sequence Likelihood Calibration with Human Feedback" (hinge)

The reference model is the policy with its LoRA adapter switched off (``with model.disable_adapter():``), so
there is only one copy of the base weights in memory. Shapes: B = number of preference pairs in a batch.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from labs.core.errors import ConfigError
from labs.models import adapters
from labs.runs import lessons, results
from labs.serving import generation
from labs.training import loop as training
from labs.training.kernels import training_kernels
from labs.training.prefix import FrozenPrefix


LOSS_VARIANTS = {
    "sigmoid": "DPO (Rafailov et al. 2023): -log σ(β·h)",
    "ipo": "IPO (Azar et al. 2023): (h − 1/(2β))²",
    "hinge": "Hinge / SLiC (Zhao et al. 2023): max(0, 1 − β·h)",
}


@dataclass
class PreferenceLoss:
    """Per-pair results of one batch, all shaped (B,)."""

    losses: torch.Tensor
    chosen_rewards: torch.Tensor  # beta * (log pi(y_w|x) - log pi_ref(y_w|x)), eq. 5 without log Z
    rejected_rewards: torch.Tensor  # beta * (log pi(y_l|x) - log pi_ref(y_l|x))

    @property
    def margins(self) -> torch.Tensor:
        """chosen_rewards - rejected_rewards (B,): beta * h, how far the policy prefers the chosen answer."""
        return self.chosen_rewards - self.rejected_rewards

    @property
    def accuracies(self) -> torch.Tensor:
        """1 where the implicit reward ranks the pair correctly (a tie, e.g. at step 1, counts as wrong)."""
        return (self.chosen_rewards > self.rejected_rewards).float()


def preference_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
                    ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
                    beta: float, variant: str = "sigmoid") -> PreferenceLoss:
    """The DPO loss family from summed sequence log-probs, each (B,).

    h = log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l): how much more the policy moved toward the chosen
    answer than toward the rejected one, compared with where the reference started.
    """
    if not beta > 0 or not math.isfinite(beta):
        raise ConfigError(f"beta must be a positive number (got {beta}); 0.1 is the usual default.")
    if variant not in LOSS_VARIANTS:
        raise ConfigError(f"Unknown loss variant '{variant}'. Choose one of: {', '.join(LOSS_VARIANTS)}.")
    chosen_logratio = policy_chosen_logps - ref_chosen_logps  # (B,)
    rejected_logratio = policy_rejected_logps - ref_rejected_logps  # (B,)
    h = chosen_logratio - rejected_logratio  # (B,)
    if variant == "sigmoid":
        losses = -F.logsigmoid(beta * h)  # eq. 7; logsigmoid is the stable form of log(σ(·))
    elif variant == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2  # IPO eq. 17 (tau = beta): regress h onto a fixed target margin
    else:
        losses = torch.relu(1 - beta * h)  # SLiC-HF hinge: no gradient once the margin beta*h reaches 1
    return PreferenceLoss(losses=losses,
                          chosen_rewards=beta * chosen_logratio.detach(),
                          rejected_rewards=beta * rejected_logratio.detach())


# -- turning pairs into token batches ---------------------------------------------------------------------


@dataclass
class EncodedPair:
    """One preference pair tokenised twice: prompt + chosen and prompt + rejected answer."""

    chosen: dict  # training.tokenize_example output: input_ids, labels (-100 on the prompt), prompt_len
    rejected: dict
    index: int  # position in the pair list it came from


def encode_pairs(lm, pairs: Sequence, max_len: int) -> tuple[list[EncodedPair], list[str]]:
    """Render each prompt with the model's chat template and tokenise prompt+chosen and prompt+rejected.

    Returns the encoded pairs and one line per pair that was skipped (prompt alone fills max_len) or cut short.
    """
    encoded, notes = [], []
    for i, pair in enumerate(pairs):
        prompt_text = generation.render_prompt(lm, list(pair.prompt))
        chosen = training.tokenize_example(lm.tokenizer, prompt_text, pair.chosen, max_len=max_len)
        rejected = training.tokenize_example(lm.tokenizer, prompt_text, pair.rejected, max_len=max_len)
        if chosen["prompt_len"] >= max_len - 1:
            notes.append(f"pair {i + 1} skipped: its prompt alone is {chosen['prompt_len']}+ tokens, the limit is "
                         f"{max_len}.")
            continue
        if len(chosen["input_ids"]) == max_len or len(rejected["input_ids"]) == max_len:
            notes.append(f"pair {i + 1}: an answer was cut at {max_len} tokens.")
        encoded.append(EncodedPair(chosen, rejected, i))
    return encoded, notes


def pair_batch(items: Sequence[EncodedPair], pad_id: int, device) -> dict[str, torch.Tensor]:
    """One (2B, T) batch: rows 0..B-1 are the chosen answers, rows B..2B-1 the rejected ones."""
    batch = training.collate([p.chosen for p in items] + [p.rejected for p in items], pad_id)
    return training.to_device(batch, device)


def policy_and_reference_logps(model, batch: dict[str, torch.Tensor], with_grad: bool = True,
                               frozen: FrozenPrefix | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed log-probs of each sequence under the policy (adapter on) and the reference (adapter off), (2B,) each.

    The reference is the *same* module with its LoRA adapter disabled: the frozen base weights, no second copy.
    `frozen`: with LoRA on the top blocks only, both share the blocks below, run once per sequence (the states
    replayed for the reference, the policy, and every later step that meets the sequence again).
    """
    ids, attention = batch["input_ids"], batch.get("attention_mask")
    with frozen.around(ids, attention) if frozen is not None else contextlib.nullcontext():
        with torch.no_grad(), model.disable_adapter():
            ref_logps, _ = training.sequence_logprobs(model, **batch)
        with torch.set_grad_enabled(with_grad):
            policy_logps, n_tokens = training.sequence_logprobs(model, **batch)
    return policy_logps, ref_logps, n_tokens


# -- the background run -----------------------------------------------------------------------------------

GENERAL_PROMPTS = (  # a quick forgetting check: things the model could do before tuning, unrelated to the style
    "What is the capital of France?",
    "Write a short poem about the sea.",
)


@dataclass(frozen=True)
class DPOConfig:
    """One DPO run on a LoRA adapter: data, loss variant and beta, optimiser; lengths in tokens."""

    model_key: str = "smollm2-135m-instruct"
    data_id: str = ""  # fingerprint of the train + held-out pairs (labs.data.preferences.fingerprint)
    n_train: int = 0
    n_heldout: int = 0
    loss_variant: str = "sigmoid"  # sigmoid = DPO; ipo; hinge
    beta: float = 0.1  # strength of the pull back toward the reference; the paper uses 0.1-0.5
    # LoRA tolerates ~10x the full fine-tuning rate. On the top 8 layers 2e-3 moves SmolLM2-135M as far in 30 steps
    # as 5e-4 on all 30 layers did (held-out margin 3.3 vs 4.0, accuracy 100% both) in 74 s instead of 123 s here
    learning_rate: float = 2e-3
    steps: int = 30  # ~1-2 minutes on 2 CPU cores with 2 pairs a step
    pairs_per_step: int = 2  # each pair = 2 sequences through the policy and 2 through the reference
    lora_r: int = 8
    lora_alpha: float = 16
    last_layers: int = 8  # LoRA on the top N layers only (0 = all): backward stops there, as on the LoRA page
    max_len: int = 192  # tokens per prompt+answer; the bundled pairs need ~110
    eval_pairs: int = 24  # held-out pairs scored before/after
    sample_prompts: int = 3  # held-out prompts answered by reference and policy at the end
    max_new_tokens: int = 60
    precision: str = "auto"  # bf16 autocast for the training steps on CPUs with native bf16 matmuls (labs.training)
    seed: int = 0

    def __post_init__(self):
        if not (isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and self.beta > 0):
            raise ConfigError(f"β must be a positive number (got {self.beta}); try 0.1.")
        if self.loss_variant not in LOSS_VARIANTS:
            raise ConfigError(f"Loss variant must be one of {', '.join(LOSS_VARIANTS)}.")

        training.check_lr(self.learning_rate, "5e-4 is a good start for LoRA", high=0.1, high_allowed=True)
        training.check_between("Steps", self.steps, 1, 5000)
        training.check_between("Pairs per step", self.pairs_per_step, 1, 64)
        training.check_between("The token limit", self.max_len, 16, 8192)
        if not 0 <= self.sample_prompts <= 64 or not 1 <= self.max_new_tokens <= 4096:
            raise ConfigError("Answer 0-64 held-out prompts with 1-4096 new tokens each.")
        if not 0 <= self.eval_pairs <= 10_000:
            raise ConfigError("Held-out pairs to score must be between 0 and 10000.")
        if self.n_train < 1:
            raise ConfigError("There are no training pairs: load the bundled set, upload a file or make your own.")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError("precision must be 'auto', 'fp32' or 'bf16'.")
        if self.last_layers < 0:
            raise ConfigError("The number of top layers to adapt must be 0 (all) or more.")


def heldout_scores(model, encoded: Sequence[EncodedPair], pad_id: int, beta: float, batch_pairs: int = 4,
                   frozen: FrozenPrefix | None = None) -> dict:
    """Score held-out pairs with the reference (adapter off) and the policy, in one pass per batch.

    'reference prefers chosen' = log pi_ref(y_w|x) > log pi_ref(y_l|x) (what the model believed before tuning);
    'policy prefers chosen' the same after tuning; 'implicit reward accuracy' = r(y_w) > r(y_l) (eq. 5), which is
    exactly "the policy moved toward the chosen answer more than toward the rejected one".
    """
    device = next(model.parameters()).device
    rows = []
    was_training = model.training
    model.eval()
    for start in range(0, len(encoded), batch_pairs):
        items = encoded[start:start + batch_pairs]
        B = len(items)
        policy, ref, n_tokens = policy_and_reference_logps(model, pair_batch(items, pad_id, device), with_grad=False,
                                                           frozen=frozen)
        out = preference_loss(policy[:B], policy[B:], ref[:B], ref[B:], beta)
        for j, item in enumerate(items):
            rows.append({"index": item.index,
                         "ref_chosen": float(ref[j]), "ref_rejected": float(ref[B + j]),
                         "policy_chosen": float(policy[j]), "policy_rejected": float(policy[B + j]),
                         "reward_chosen": float(out.chosen_rewards[j]), "reward_rejected": float(out.rejected_rewards[j]),
                         "tokens_chosen": int(n_tokens[j]), "tokens_rejected": int(n_tokens[B + j])})
    model.train(was_training)
    n = max(len(rows), 1)
    return {
        "pairs": len(rows),
        "reference_prefers_chosen": sum(r["ref_chosen"] > r["ref_rejected"] for r in rows) / n,
        "policy_prefers_chosen": sum(r["policy_chosen"] > r["policy_rejected"] for r in rows) / n,
        "implicit_reward_accuracy": sum(r["reward_chosen"] > r["reward_rejected"] for r in rows) / n,
        "mean_margin": sum(r["reward_chosen"] - r["reward_rejected"] for r in rows) / n,
        # mean log p(chosen) - log p(rejected) in nats: how strongly each model prefers the chosen answer
        "reference_gap": sum(r["ref_chosen"] - r["ref_rejected"] for r in rows) / n,
        "policy_gap": sum(r["policy_chosen"] - r["policy_rejected"] for r in rows) / n,
        "rows": rows,
    }


def _answers(lm, model, prompts: Sequence, max_new_tokens: int) -> list[dict]:
    """Greedy answers of the reference (adapter off) and the tuned policy, side by side: each side's prompts are
    decoded together in one batch (greedy in a batch = the same answer alone, in float32; labs.serving.engine)."""
    config = generation.GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0, seed=0,
                                         repetition_penalty=1.1)
    chats = [list(p) if not isinstance(p, str) else [{"role": "user", "content": p}] for p in prompts]
    model.eval()
    with model.disable_adapter():  # the whole batch decodes inside: the adapter stays off until it is done
        before = list(generation.generate_many(lm, chats, config, model=model))
    after = list(generation.generate_many(lm, chats, config, model=model))
    return [{"prompt": m[-1]["content"], "reference": b, "tuned": a} for m, b, a in zip(chats, before, after)]


def _drift(lm, model, answers: list[dict], pad_id: int) -> float:
    """Forgetting check: mean change per token in log p(reference's own answer) after tuning (0 = unchanged)."""
    examples = [training.tokenize_example(lm.tokenizer, generation.render_prompt(lm, a["prompt"]), a["reference"],
                                          max_len=512) for a in answers if a["reference"].strip()]
    if not examples:
        return 0.0
    device = next(model.parameters()).device
    batch = training.to_device(training.collate(examples, pad_id), device)
    policy, ref, n_tokens = policy_and_reference_logps(model, batch, with_grad=False)
    return float(((policy - ref) / n_tokens.clamp(min=1)).mean())


def train(ctx, lm, train_pairs: Sequence, heldout_pairs: Sequence, general_prompts: Sequence[str] = GENERAL_PROMPTS
          ) -> dict:
    """The DPO run: LoRA on a copy of `lm`, reference = that copy with the adapter disabled. Logs every step."""
    cfg: DPOConfig = ctx.config
    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    n_layers = len(training.decoder_layers(lm.model))
    top = training.top_blocks(n_layers, cfg.last_layers)
    lora = training.LoraSettings(r=cfg.lora_r, alpha=cfg.lora_alpha, layers=top)
    model, n_trainable, n_total = training.trainable_model(lm, mode="lora", lora=lora, seed=cfg.seed)
    device = next(model.parameters()).device
    frozen = FrozenPrefix(model, (lm.key, id(lm.model)))  # top-N LoRA: the blocks below run once per sequence
    pad_id = training.pad_id(lm.tokenizer)
    max_len = min(cfg.max_len, lm.context_length)
    encoded, notes = encode_pairs(lm, train_pairs, max_len)
    for line in notes[:10]:
        ctx.note(line)
    if not encoded:
        raise ConfigError(f"Every training pair is longer than {max_len} tokens; raise the token limit.")
    ctx.note(f"LoRA r={cfg.lora_r}: {n_trainable:,} trainable of {n_total:,} parameters "
             f"({100 * n_trainable / n_total:.2f}%). Reference = same weights, adapter disabled. "
             f"{len(encoded)} pairs tokenised; ready in {time.perf_counter() - t_start:.1f} s.")
    ctx.set_total(cfg.steps)
    params = [p for p in model.parameters() if p.requires_grad]

    def batches():
        order: list[int] = []
        rng = torch.Generator().manual_seed(cfg.seed)
        while True:
            if len(order) < cfg.pairs_per_step:
                order += torch.randperm(len(encoded), generator=rng).tolist()
            items = [encoded[i] for i in order[:cfg.pairs_per_step]]
            del order[:cfg.pairs_per_step]
            yield len(items), pair_batch(items, pad_id, device)

    def loss_fn(item) -> training.StepOutput:
        B, batch = item
        policy, ref, _ = policy_and_reference_logps(model, batch, frozen=frozen)
        out = preference_loss(policy[:B], policy[B:], ref[:B], ref[B:], cfg.beta, cfg.loss_variant)  # eq. 7
        return training.StepOutput(out.losses.mean(), tokens=int(batch["attention_mask"].sum()), metrics={
            "rewards/chosen": float(out.chosen_rewards.mean()),
            "rewards/rejected": float(out.rejected_rewards.mean()),
            "rewards/margins": float(out.margins.mean()),
            "rewards/accuracies": float(out.accuracies.mean()),
            "logps/chosen": float(policy[:B].detach().mean()),
            "logps/rejected": float(policy[B:].detach().mean())})

    model.train()
    loop = training.LoopSettings(steps=cfg.steps, lr=cfg.learning_rate, warmup=min(3, cfg.steps // 10),
                                 loss_name="loss", precision=cfg.precision)
    with training_kernels(model, device, cfg.precision):
        training.fit(ctx, params, batches(), loss_fn, loop, device=device)
    ctx.note("Training done; scoring held-out pairs and writing before/after answers…")
    held, held_notes = encode_pairs(lm, list(heldout_pairs)[:cfg.eval_pairs], max_len)
    with training.autocast(device, cfg.precision):  # as the training steps
        scores = heldout_scores(model, held, pad_id, cfg.beta, frozen=frozen) if held else None
    for row in (scores or {}).get("rows", []):
        row["prompt"] = list(heldout_pairs)[row["index"]].prompt_text
    ctx.check_stop()
    prompts = [p.prompt for p in list(heldout_pairs)[:cfg.sample_prompts]]
    answers = _answers(lm, model, prompts + list(general_prompts), cfg.max_new_tokens)  # one batch per side
    samples, general = answers[:len(prompts)], answers[len(prompts):]
    drift = _drift(lm, model, general, pad_id)
    folder = adapters.save_adapter(model, ctx.artifacts / "adapter", {
        "label": f"DPO {cfg.loss_variant} β={cfg.beta:g}, {cfg.steps} steps ({ctx.run_id})",
        "base_model": lm.key, "page": "dpo", "run_id": ctx.run_id,
        "loss_variant": cfg.loss_variant, "beta": cfg.beta, "data_id": cfg.data_id})
    result = {"heldout": scores, "samples": samples, "general": general, "general_drift_per_token": drift,
              "adapter": str(folder), "trainable": n_trainable, "total": n_total, "skipped": notes}
    ctx.save_json("result.json", result)
    return {"adapter": str(folder), "trainable_params": n_trainable,
            "heldout_implicit_reward_accuracy": scores["implicit_reward_accuracy"] if scores else None,
            "heldout_reference_prefers_chosen": scores["reference_prefers_chosen"] if scores else None,
            "heldout_policy_prefers_chosen": scores["policy_prefers_chosen"] if scores else None,
            "general_drift_per_token": drift}


def claim_verdict(metrics: Sequence[dict], window: int = 5, heldout: dict | None = None):
    """C8 from a run's per-step metrics: the reward margin, the preference accuracy and the chosen reward averaged
    over the first and the last `window` steps (one step sees only a few pairs, so single steps are noise), judged
    by labs.runs.lessons.dpo_learns; the held-out margin and accuracy are reported next to them."""
    rows = [m for m in metrics if "rewards/margins" in m]
    if len(rows) < 2 * window:
        return lessons.not_measured("C8", f"fewer than {2 * window} training steps were logged")

    def mean(key, part):
        return sum(m[key] for m in part) / len(part)

    first, last = rows[:window], rows[-window:]
    v = lessons.dpo_learns(*([mean(k, first), mean(k, last)] for k in
                             ("rewards/margins", "rewards/accuracies", "rewards/chosen")))
    v.figures["window_steps"] = window
    if heldout:
        v.figures.update(heldout_margin=heldout.get("mean_margin"),
                         heldout_reward_accuracy=heldout.get("implicit_reward_accuracy"))
    return v


def load_result(run) -> dict | None:
    """The before/after results a finished run saved (None while it runs or if it failed)."""
    path = run.artifacts / "result.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


results.register(DPOConfig, results.read_dpo)
