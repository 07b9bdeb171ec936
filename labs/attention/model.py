"""A tiny language model whose sequence mixer is chosen by config, and the live training run for the page.

    model = TinyLM(ModelConfig(mixer="kda", vocab_size=64, max_len=64))
    logits = model(inputs)                      # [B, T] -> [B, T, vocab]

Blocks are pre-norm: x + mixer(LN(x)), then x + MLP(LN(x)), as in GPT-2 / nanoGPT. Positions are learned
absolute embeddings, the same for every mixer, so the only thing that differs between variants is the mixer.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from labs.attention import tasks
from labs.attention.linear import power_state_dim
from labs.attention.mixers import MixerConfig, build_mixer, check_mixers, state_numbers
from labs.core import compute, settings
from labs.core.errors import ConfigError
from labs.runs import results
from labs.training import loop as training


@dataclass(frozen=True)
class ModelConfig:
    """A TinyLM: which mixer, vocab_size V, max_len in tokens, width d_model M, n_layers L, n_heads H;
    window (tokens) and power (p) apply only to the mixers that use them."""

    mixer: str = "softmax"
    vocab_size: int = 64
    max_len: int = 64
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    window: int = 8
    power: int = 2

    def mixer_config(self) -> MixerConfig:
        """The MixerConfig of every block's mixer: chunks of C = 16 tokens in chunked mode, 8 for KDA.

        KDA's per-channel decay makes its in-chunk term cost T·C·K (a [C, C, K] decay per chunk) against T·C for
        the others, so a shorter chunk pays. One forward and backward of KDA at batch 64, 4 heads of 16, 64
        tokens, one thread (2-core CPU): 83 ms with C = 8, 132 ms with C = 16, 472 ms with C = 32. The chunked
        form is exact for any C, so only float rounding changes with it."""
        return MixerConfig(name=self.mixer, d_model=self.d_model, n_heads=self.n_heads, window=self.window,
                           power=self.power, chunk_size=8 if self.mixer == "kda" else 16)


class Block(nn.Module):
    """Pre-norm block: x + mixer(LN(x)), then x + MLP(LN(x)) with an M -> 4M -> M MLP."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        M = config.d_model
        self.ln1, self.ln2 = nn.LayerNorm(M), nn.LayerNorm(M)
        self.mixer = build_mixer(config.mixer_config())
        self.mlp = nn.Sequential(nn.Linear(M, 4 * M), nn.GELU(), nn.Linear(4 * M, M))

    def forward(self, x: torch.Tensor, mode: str = "chunked") -> torch.Tensor:
        """x: [B, T, M] -> [B, T, M]; mode "chunked" (parallel over time) or "recurrent" goes to the mixer."""
        x = x + self.mixer(self.ln1(x), mode=mode)
        return x + self.mlp(self.ln2(x))


class TinyLM(nn.Module):
    """Token + learned position embeddings, L blocks around the configured mixer, final LayerNorm, linear head."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(config.vocab_size, config.d_model)
        self.pos = nn.Embedding(config.max_len, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def forward(self, inputs: torch.Tensor, mode: str = "chunked") -> torch.Tensor:
        """inputs: [B, T] token ids (T <= max_len) -> logits [B, T, vocab]; mode as in Block.forward."""
        B, T = inputs.shape
        x = self.tok(inputs) + self.pos(torch.arange(T, device=inputs.device))          # [B, T, M]
        for block in self.blocks:
            x = block(x, mode=mode)
        return self.head(self.ln(x))                                                      # [B, T, vocab]


@dataclass(frozen=True)
class TrainConfig:
    """One live run: every mixer in `mixers` trains on the same task and batches, one step each in turn."""
    task: str = "mqar"
    mixers: tuple[str, ...] = ("softmax", "linear", "kda")
    num_kv_pairs: int = 6  # 6 pairs fit easily in a 64-wide state: raise it to watch fixed states run out
    length: int = 16
    group_size: int = 3
    vocab_size: int = 32
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    window: int = 8
    power: int = 2
    steps: int = 200  # ≈ 1 minute for three mixers on an idle 2-core CPU
    batch_size: int = 32
    lr: float = 1e-2  # high for a tiny model: synthetic tasks learn in hundreds of steps, not thousands
    eval_every: int = 10
    eval_examples: int = 128
    seed: int = 0
    max_tokens_per_step: int = field(default=16384, repr=False)  # batch × length × mixers guard for a 2-core CPU

    def __post_init__(self):
        check_mixers(self.mixers)
        self.task_config()  # validates the task fields
        for m in self.mixers:
            self.model_config(m).mixer_config()  # validates heads, window, p

        training.check_between("Steps", self.steps, 1, 5000)
        training.check_between("Batch size", self.batch_size, 1, 512)
        training.check_lr(self.lr, "try 3e-3")
        if self.eval_every < 1:
            raise ConfigError("Evaluate at least every 1 step (eval_every ≥ 1).")
        if "power" in self.mixers:
            features = power_state_dim(self.d_model // self.n_heads, self.power)
            if features > 8192:
                raise ConfigError(f"Power attention with p={self.power} and head dim {self.d_model // self.n_heads} has "
                                 f"{features:,} features per head — too big to train here. Use p=2, more heads "
                                 "or a smaller width.")
        tokens = self.batch_size * self.task_config().seq_len * len(self.mixers)
        if tokens > self.max_tokens_per_step:
            raise ConfigError(f"{tokens:,} tokens per step (batch × length × mixers) is too much for this machine "
                             f"(limit {self.max_tokens_per_step:,}). Lower the batch, the length or the mixers.")

    def task_config(self) -> tasks.TaskConfig:
        """The synthetic task these fields describe (lengths in tokens)."""
        return tasks.TaskConfig(name=self.task, vocab_size=self.vocab_size, num_kv_pairs=self.num_kv_pairs,
                                length=self.length, group_size=self.group_size)

    def model_config(self, mixer: str) -> ModelConfig:
        """The ModelConfig of one mixer's TinyLM: max_len = the task's sequence length, vocabulary at least the task's."""
        task = self.task_config()
        return ModelConfig(mixer=mixer, vocab_size=max(task.model_vocab, self.vocab_size), max_len=task.seq_len,
                           d_model=self.d_model, n_layers=self.n_layers, n_heads=self.n_heads,
                           window=self.window, power=self.power)


def build_models(config: TrainConfig, device: str = "cpu") -> dict[str, TinyLM]:
    """One TinyLM per mixer, {mixer: model} on device, seeded alike so embeddings and MLPs start equal."""
    models = {}
    for name in config.mixers:
        torch.manual_seed(config.seed)  # same embeddings and MLPs at init for every mixer
        models[name] = TinyLM(config.model_config(name)).to(device)
    return models


def train(ctx, device: str | None = None) -> dict:
    """The labs.runs.jobs step function: logs loss_<mixer> every step and acc_<mixer> every eval_every steps."""
    config: TrainConfig = ctx.config
    device = device or settings.device_info().device
    task = config.task_config()
    models = build_models(config, device)
    eval_in, eval_lab = (t.to(device) for t in tasks.generate(task, config.eval_examples, seed=10_000_019 + config.seed))
    ctx.set_total(config.steps)
    ctx.note(f"{task.name}: sequences of {task.seq_len} tokens; chance accuracy {task.chance:.3f}. "
             f"Mixers: {', '.join(config.mixers)}.")
    final = {}

    def batches():
        for step in range(1, config.steps + 1):
            yield tuple(t.to(device) for t in tasks.generate(task, config.batch_size, seed=config.seed * 1_000_003 + step))

    def evaluate_step(step: int) -> dict:
        final.update(side.map(lambda model: evaluate(model, eval_in, eval_lab), models))
        return {f"acc_{name}": acc for name, acc in final.items()}

    with SideBySide(len(models)) as side:
        fit_side_by_side(ctx, models, batches(), config.steps, config.lr, config.eval_every, evaluate_step,
                         side=side)
    result = {"task": task.name, "seq_len": task.seq_len, "chance": task.chance,
              "accuracy": final,
              "state_numbers": {n: state_numbers(config.model_config(n).mixer_config(), task.seq_len) * config.n_layers
                                for n in models},
              "params": {n: sum(p.numel() for p in m.parameters()) for n, m in models.items()}}
    ctx.save_json("result.json", result)
    for name, model in models.items():
        torch.save(model.state_dict(), ctx.artifacts / f"{name}.pt")
    return result


class SideBySide:
    """Runs one function per model across the cores this training may use, one thread per model at a time.

    These models are so small that a second intra-op thread costs more in synchronisation than it saves (the
    sweeps compute on one), but separate models split across cores well: three palindrome mixers took 87–89 ms per
    forward and backward at 64 tokens in two threads vs 129–133 ms one after another (2-core CPU). Every worker
    computes on one intra-op thread and each model's arithmetic stays in one thread, so the numbers are those of
    the one-thread loop bit for bit, however many workers there are.

    The slowest model goes first (each model's last time decides the order), so that on two cores KDA, as slow as
    the other three mixers together, runs beside them rather than after one of them.

        with SideBySide(len(models)) as side:
            losses = side.map(lambda model: ..., models)     # {name: result}, in the order of `models`
    """

    def __init__(self, n_models: int, workers: int | None = None):
        self.workers = max(1, min(n_models, compute.threads_for("training") if workers is None else workers))
        self.pool = None
        self.seconds: dict[str, float] = {}  # each model's last time in `map`

    def __enter__(self) -> "SideBySide":
        if self.workers > 1:
            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="mixer",
                                           initializer=torch.set_num_threads, initargs=(1,))
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def map(self, fn, models: dict) -> dict:
        """{name: fn(model)} for every model: in the pool's threads, or here (one thread) without a pool."""
        if self.pool is None:
            with compute.threads(1):
                return {name: fn(model) for name, model in models.items()}

        def timed(name: str):
            t0 = time.perf_counter()
            out = fn(models[name])
            self.seconds[name] = time.perf_counter() - t0
            return out

        slowest_first = sorted(models, key=lambda name: -self.seconds.get(name, 0.0))
        futures = {name: self.pool.submit(timed, name) for name in slowest_first}
        return {name: futures[name].result() for name in models}


def mixer_losses(models: dict[str, TinyLM], inputs: torch.Tensor, labels: torch.Tensor,
                 side: SideBySide | None = None) -> training.StepOutput:
    """Next-token cross-entropy of every mixer on the same batch (only the scored positions count).

    Each model runs its forward and its own loss's backward (in `side`'s threads when given), so each model's
    weights get exactly its own loss's gradient; the returned loss is their sum, with backward done.
    Logged: loss_<mixer> per mixer, and `loss` = the worst of them, so a NaN in any mixer ends the run readably.
    """
    def forward_backward(model: TinyLM) -> torch.Tensor:
        model.train()
        loss = F.cross_entropy(model(inputs).flatten(0, 1), labels.flatten(), ignore_index=tasks.IGNORE)
        loss.backward()  # before the NaN check: fine, since only the optimizer step touches the weights
        return loss.detach()

    losses = (side or SideBySide(1)).map(forward_backward, models)
    values = torch.stack(list(losses.values()))
    metrics = {f"loss_{n}": loss.item() for n, loss in losses.items()}
    metrics["loss"] = float(values.max()) if torch.isfinite(values).all() else float("nan")
    return training.StepOutput(values.sum(), backward_done=True, tokens=inputs.numel() * len(models),
                               metrics=metrics)


def fit_side_by_side(ctx, models: dict[str, TinyLM], batches, steps: int, lr: float, eval_every: int, evaluate_step,
                     on_step=None, side: SideBySide | None = None):
    """Train several mixers in lock-step on the same batches through the shared loop (labs.training.loop.fit),
    their forward and backward passes side by side in `side`'s threads (one after another without it).

    One AdamW param group per mixer, each clipped on its own (as separate optimizers would), weight decay 0.01,
    warm-up over the first tenth of the steps, then a constant rate.
    """
    groups = [{"params": list(m.parameters())} for m in models.values()]
    loop = training.LoopSettings(steps=steps, lr=lr, warmup=max(1, steps // 10), schedule="constant",
                                 weight_decay=0.01, clip_per_group=True, eval_every=eval_every, loss_name=None)
    return training.fit(ctx, groups, batches, lambda batch: mixer_losses(models, *batch, side=side), loop,
                        evaluate=evaluate_step, on_step=on_step)


@torch.no_grad()
def evaluate(model: TinyLM, inputs: torch.Tensor, labels: torch.Tensor, batch: int = 128) -> float:
    """Accuracy (0-1) of the argmax next token at the scored positions: inputs, labels [N, T] (IGNORE = unscored)."""
    model.eval()
    hits = total = 0
    for i in range(0, len(inputs), batch):
        logits = model(inputs[i:i + batch])
        scored = labels[i:i + batch] != tasks.IGNORE
        hits += (logits.argmax(-1)[scored] == labels[i:i + batch][scored]).sum().item()
        total += scored.sum().item()
    return hits / max(total, 1)


def load_trained(run_dir, config: TrainConfig, mixer: str) -> TinyLM | None:
    """The trained model of one mixer from a finished run's folder (None if it is not there)."""
    path = Path(run_dir) / f"{mixer}.pt"
    if not path.exists():
        return None
    model = TinyLM(config.model_config(mixer))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


results.register(TrainConfig, results.attention_reader("task", "result.json"))
