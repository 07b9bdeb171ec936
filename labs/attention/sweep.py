"""Size sweeps: accuracy against a task's size, one curve per mixer — MQAR pairs (claim C11), palindrome length
(C11b) and parity length (C11c, parity needs negative eigenvalues).

    config = PairsSweepConfig()                 # softmax, linear, DeltaNet, KDA on 2, 4, 8, 16 pairs
    result = run(ctx)                           # {"accuracy": {mixer: {pairs: accuracy}}, ...}
    result = run_lengths(ctx)                   # ctx.config a PalindromeSweepConfig or ParitySweepConfig:
                                                # {"accuracy": {mixer: {length: accuracy}}, ...}

One model per mixer trains on a **mixture** of pair counts (step s uses pairs[s mod len(pairs)], as Zoology trains
on several sequence lengths), and every evaluation scores each pair count on its own held-out set. So the whole
curve costs one training run per mixer, and a fixed-size state has to hold every pair of the longest sequences with
the same weights that handle the short ones (Arora et al. 2024, 'Zoology', MQAR figure).

Why these defaults (measured on a 2-core CPU while building the page; see the README's claims table):
* one layer: the short causal convolution every mixer has already puts the key next to its value, so one
  attention layer can look a key up; a second layer doubles the time and slows learning;
* 4 heads of 16 (d = 64): each fixed-state head keeps a 16 × 16 state, so 16 pairs fill it; softmax's heads
  are as narrow, but it keeps every key;
* vocabulary 48 (22 keys, 24 values) and lr 3e-3 with batch 64: softmax reaches ~100 % at every pair count in
  about 300 steps; lr 1e-2 with vocabulary 64 and two layers did not in 200 (the issue's 0.85 / 0.11).
* one intra-op thread per model, the mixers side by side on the cores (`model.SideBySide`), KDA in chunks of 8:
  the default sweep ran in 44 s against 66 s one mixer after another in chunks of 16 (2-core CPU, lessons
  benchmark, same figures). KDA's per-channel decay is still the slowest operator here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from labs.attention import tasks
from labs.attention.mixers import check_mixers, state_numbers
from labs.attention.model import ModelConfig, SideBySide, TinyLM, evaluate, fit_side_by_side
from labs.core import compute
from labs.core.errors import ConfigError
from labs.runs import lessons, results
from labs.training import loop as training


@dataclass(frozen=True)
class PairsSweepConfig:
    """The pairs sweep: which mixers, which numbers of key-value pairs, and the tiny model and training
    settings they share (the comments give the reason for each default)."""
    mixers: tuple[str, ...] = ("softmax", "linear", "deltanet", "kda")
    pairs: tuple[int, ...] = (2, 4, 8, 16)  # 16 pairs = one per dimension of a 16-wide head's state
    vocab_size: int = 48  # keys 2..23, values 24..47: few embeddings to learn, enough keys for 16 pairs
    d_model: int = 64
    n_heads: int = 4  # head dim 16: the state S per head is 16 × 16
    n_layers: int = 1  # the short conv makes one layer enough for a look-up
    steps: int = 300  # softmax reaches ~100 % at every pair count by ~300 steps at lr 3e-3
    batch_size: int = 64
    lr: float = 3e-3
    eval_every: int = 50
    eval_examples: int = 256  # per pair count: ±3 points of sampling noise at 50 %
    seed: int = 0

    def __post_init__(self):
        check_mixers(self.mixers)
        if len(self.pairs) < 2:
            raise ConfigError("Pick at least two numbers of pairs: the sweep draws accuracy against pairs.")
        if min(self.pairs) < 1:
            raise ConfigError("Every number of pairs must be at least 1.")
        for p in self.pairs:
            tasks.TaskConfig(name="mqar", vocab_size=self.vocab_size, num_kv_pairs=p)  # each pair needs its own key
        if self.d_model % self.n_heads:
            raise ConfigError(f"The width d={self.d_model} must divide evenly into {self.n_heads} heads.")
        if not 1 <= self.steps <= 5000:
            raise ConfigError("Steps must be between 1 and 5000.")

        training.check_lr(self.lr, "try 3e-3")
        if self.eval_every < 1 or self.eval_examples < 1 or self.batch_size < 1:
            raise ConfigError("eval_every, eval_examples and batch_size must each be at least 1.")

    def task(self, pairs: int) -> tasks.TaskConfig:
        """The MQAR task with `pairs` key-value pairs (sequences of 4 · pairs tokens)."""
        return tasks.TaskConfig(name="mqar", vocab_size=self.vocab_size, num_kv_pairs=pairs)

    def model_config(self, mixer: str) -> ModelConfig:
        """The tiny model for one mixer, long enough for the most pairs."""
        return ModelConfig(mixer=mixer, vocab_size=self.vocab_size, max_len=4 * max(self.pairs),
                           d_model=self.d_model, n_layers=self.n_layers, n_heads=self.n_heads)


def run(ctx) -> dict:
    """The labs.runs.jobs step function. Logs loss_<mixer> every step and, every eval_every steps,
    acc_<mixer>_<pairs> for each pair count; returns {"accuracy": {mixer: {pairs: acc}}, "chance", "state_numbers"}.

    Each model computes on one intra-op thread: these models are so small that a second thread costs more in
    synchronisation than it saves (2-10× slower with two threads on a busy 2-core machine). The cores go to
    different mixers instead (`model.SideBySide`), which keeps every number the one-thread loop's."""
    with compute.threads(1):
        return _run(ctx)


def _run(ctx) -> dict:
    config: PairsSweepConfig = ctx.config
    pairs = sorted(set(config.pairs))
    out = sweep_sizes(ctx, config, pairs, config.task, "pairs",
                      note=f"MQAR with {', '.join(map(str, pairs))} pairs (sequences of {4 * min(pairs)}–"
                           f"{4 * max(pairs)} tokens); chance {config.task(pairs[0]).chance:.3f}. "
                           f"Mixers: {', '.join(config.mixers)}.")
    result = {"accuracy": out["accuracy"], "pairs": pairs, "chance": out["chance"],
              "state_numbers": out["state_numbers"]}
    ctx.save_json("result.json", result)
    return result


def sweep_sizes(ctx, config, sizes: list[int], task_of, size_name: str, note: str, scored=None) -> dict:
    """One TinyLM per mixer in config.mixers, trained on a mixture of task sizes (step s uses sizes[s mod n]) and
    scored on each size's own held-out set every config.eval_every steps. Logs loss_<mixer> every step,
    acc_<mixer>_<size> at each evaluation and `size_name` (the size of that step's batch).

    task_of(size) -> tasks.TaskConfig; scored(labels) -> labels with the unscored positions set to IGNORE
    (held-out sets only: training sees every label). Returns {"accuracy": {mixer: {size: acc}}, "chance",
    "state_numbers": {mixer: numbers of state at the longest size, all layers}}."""
    models = {}
    for name in config.mixers:
        torch.manual_seed(config.seed)  # the same embeddings and MLP at init for every mixer
        models[name] = TinyLM(config.model_config(name))
    held_out = {}
    for p in sizes:
        inputs, labels = tasks.generate(task_of(p), config.eval_examples, seed=20_000_003 + 97 * p + config.seed)
        held_out[p] = (inputs, scored(labels) if scored else labels)
    ctx.set_total(config.steps)
    ctx.note(note)
    accuracy: dict[str, dict[int, float]] = {n: {} for n in models}

    def size_at(step: int) -> int:
        return sizes[(step - 1) % len(sizes)]  # the sizes take turns, one per step

    def batches():
        for step in range(1, config.steps + 1):
            yield tasks.generate(task_of(size_at(step)), config.batch_size, seed=config.seed * 1_000_003 + step)

    def evaluate_step(step: int) -> dict:
        scores = side.map(lambda model: {q: evaluate(model, *held_out[q]) for q in sizes}, models)
        row = {}
        for name, by_size in scores.items():
            accuracy[name].update(by_size)
            row.update({f"acc_{name}_{q}": acc for q, acc in by_size.items()})
        return row

    def add_size(step: int, row: dict) -> None:
        row[size_name] = size_at(step)

    with SideBySide(len(models)) as side:
        fit_side_by_side(ctx, models, batches(), config.steps, config.lr, config.eval_every, evaluate_step, add_size,
                         side=side)
    longest = task_of(max(sizes))
    return {"accuracy": accuracy, "chance": task_of(sizes[0]).chance,
            "state_numbers": {n: state_numbers(config.model_config(n).mixer_config(), longest.seq_len)
                              * config.n_layers for n in models}}


@dataclass(frozen=True)
class LengthSweepConfig:
    """A length sweep of a palindrome or parity task (claims C11b, C11c): which mixers, which lengths, and the tiny
    model and training settings they share. Use PalindromeSweepConfig or ParitySweepConfig for the page's defaults."""
    task: str = "palindrome"  # "palindrome" (reverse `length` tokens) or "parity" (running parity of `length` bits)
    mixers: tuple[str, ...] = ("softmax", "linear", "deltanet")
    lengths: tuple[int, ...] = (4, 8, 16, 32)
    vocab_size: int = 32
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 1
    steps: int = 300
    batch_size: int = 64
    lr: float = 3e-3
    eval_every: int = 50
    eval_examples: int = 256
    seed: int = 0

    def __post_init__(self):
        check_mixers(self.mixers)
        if self.task not in ("palindrome", "parity"):
            raise ConfigError("The length sweep runs the palindrome or the parity task.")
        if len(set(self.lengths)) < 2:
            raise ConfigError("Pick at least two lengths: the sweep draws accuracy against length.")
        for n in self.lengths:
            self.task_config(n)  # validates each length
        if self.d_model % self.n_heads:
            raise ConfigError(f"The width d={self.d_model} must divide evenly into {self.n_heads} heads.")

        training.check_between("Steps", self.steps, 1, 5000)
        training.check_lr(self.lr, "try 3e-3")
        if self.eval_every < 1 or self.eval_examples < 1 or self.batch_size < 1:
            raise ConfigError("eval_every, eval_examples and batch_size must each be at least 1.")

    def task_config(self, length: int) -> tasks.TaskConfig:
        """The task at one length (palindrome: 2 · length tokens; parity: length tokens)."""
        return tasks.TaskConfig(name=self.task, vocab_size=self.vocab_size, length=length)

    def model_config(self, mixer: str) -> ModelConfig:
        """The tiny model for one mixer, long enough for the longest length."""
        longest = self.task_config(max(self.lengths))
        return ModelConfig(mixer=mixer, vocab_size=max(longest.model_vocab, self.vocab_size), max_len=longest.seq_len,
                           d_model=self.d_model, n_layers=self.n_layers, n_heads=self.n_heads)

    @property
    def scored_positions(self) -> str:
        """Which held-out positions are scored, in words."""
        return "the second half of each sequence" if self.task == "parity" else "every reversed token"


@dataclass(frozen=True)
class PalindromeSweepConfig(LengthSweepConfig):
    """C11b: reverse 8…64 tokens with a 32-wide model. A layer's fixed state has d = 32 key directions in all
    (2 heads × 16), so 64 tokens cannot each get their own; softmax keeps all 64. Measured while building the page
    (2-core CPU): softmax ≥ 90% at every length from ~400 steps; at 64 wide, DeltaNet caught up to ~99% at 64 tokens
    by 1,000 steps — the state was big enough and the gap was training time, so the default is narrower."""
    task: str = "palindrome"
    mixers: tuple[str, ...] = ("softmax", "linear", "deltanet")
    lengths: tuple[int, ...] = (8, 16, 32, 64)
    d_model: int = 32
    n_heads: int = 2
    steps: int = 600


@dataclass(frozen=True)
class ParitySweepConfig(LengthSweepConfig):
    """C11c: running parity of 8…32 bits, scored on each sequence's second half. Measured while building the page:
    DeltaNet with β ∈ (0, 2) reaches ~100% at every length by step 100; DeltaNet with β ∈ (0, 1), linear attention
    and 1-layer softmax stay at chance at 16 and 32 bits (they learn some of the second half of 8)."""
    task: str = "parity"
    mixers: tuple[str, ...] = ("softmax", "linear", "deltanet", "deltanet_neg")
    lengths: tuple[int, ...] = (8, 16, 32)


def second_half(labels: torch.Tensor) -> torch.Tensor:
    """labels [N, T] with the first T // 2 positions unscored: early parities are easy (the short convolution
    sees the last 4 bits), so only the positions that need a running state count."""
    out = labels.clone()
    out[:, : labels.shape[1] // 2] = tasks.IGNORE
    return out


def run_lengths(ctx) -> dict:
    """The labs.runs.jobs step function of a length sweep (one intra-op thread per model, as `run`). Logs loss_<mixer> every step,
    acc_<mixer>_<length> every eval_every steps and `length`; returns {"accuracy": {mixer: {length: acc}},
    "lengths", "chance", "task", "scored", "state_numbers"}."""
    with compute.threads(1):
        config: LengthSweepConfig = ctx.config
        lengths = sorted(set(config.lengths))
        what = "reverse" if config.task == "palindrome" else "running parity of"
        out = sweep_sizes(ctx, config, lengths, config.task_config, "length",
                          note=f"{config.task}: {what} {', '.join(map(str, lengths))} tokens; scored on "
                               f"{config.scored_positions}; chance {config.task_config(lengths[0]).chance:.3f}. "
                               f"Mixers: {', '.join(config.mixers)}.",
                          scored=second_half if config.task == "parity" else None)
        result = {**out, "lengths": lengths, "task": config.task, "scored": config.scored_positions}
        ctx.save_json("result.json", result)
        return result


def latest_accuracy(metrics: list[dict], mixers, pairs) -> dict[str, dict[int, float]]:
    """The last evaluated accuracy of each mixer at each pair count, from a run's metrics (live or finished)."""
    out: dict[str, dict[int, float]] = {m: {} for m in mixers}
    for row in metrics:
        for m in mixers:
            for p in pairs:
                if f"acc_{m}_{p}" in row:
                    out[m][int(p)] = row[f"acc_{m}_{p}"]
    return {m: a for m, a in out.items() if a}


def verdict(run_status_done: bool, metrics: list[dict], config: dict, reason: str = ""):
    """C11 from one sweep run: labs.runs.lessons.recall_vs_state over its accuracies, or 'not measured yet'."""
    if not run_status_done:
        return lessons.not_measured("C11", f"this sweep did not finish ({reason or 'still running'})")
    acc = latest_accuracy(metrics, config["mixers"], config["pairs"])
    if "softmax" not in acc:
        return lessons.not_measured("C11", "the sweep has no softmax curve to compare with: add the softmax mixer")
    return lessons.recall_vs_state(acc)


def length_verdict(run_status_done: bool, metrics: list[dict], config: dict, reason: str = ""):
    """C11b (palindrome) or C11c (parity) from one length sweep run, or 'not measured yet'."""
    claim = "C11b" if config["task"] == "palindrome" else "C11c"
    if not run_status_done:
        return lessons.not_measured(claim, f"this sweep did not finish ({reason or 'still running'})")
    acc = latest_accuracy(metrics, config["mixers"], config["lengths"])
    if claim == "C11c":
        return lessons.parity_needs_negative_eigenvalues(acc)
    if "softmax" not in acc:
        return lessons.not_measured(claim, "the sweep has no softmax curve to compare with: add the softmax mixer")
    return lessons.reversal_vs_state(acc)


for _config in (PairsSweepConfig, PalindromeSweepConfig, ParitySweepConfig):
    results.register(_config, results.attention_reader("sweep", "result.json"))
