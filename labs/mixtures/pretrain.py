"""The live tiny-GPT run on a mixture: bytes as tokens, domains sampled by weight, its config and model sizes,
per-domain train / validation streams and mixed batches, the training loop with per-domain loss and epochs, samples,
and the overfitting verdict (claim C3)."""
from __future__ import annotations

import hashlib
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from labs.core import settings
from labs.core.errors import ConfigError
from labs.data import corpora
from labs.mixtures.calculator import normalise_weights
from labs.mixtures.filtering import FilterStats, quality_filter
from labs.mixtures.gpt import GPT, GPTConfig, flops_per_token
from labs.runs import lessons, results
from labs.training import loop as training


# ---------------------------------------------------------------------------------------------------------------
# Sampling by weights and the tiny-GPT run
# ---------------------------------------------------------------------------------------------------------------


def sample_domains(weights: list[float], n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n domain indices drawn i.i.d. with probability proportional to weights: (n,) int64."""
    w = torch.tensor(weights, dtype=torch.float64)
    return torch.multinomial(w / w.sum(), n, replacement=True, generator=generator)


def encode(text: str) -> torch.Tensor:
    """Bytes as token ids (vocabulary 256): any text or language encodes; no tokenizer to train or ship."""
    return torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).long()


def decode(ids: list[int]) -> str:
    """Byte ids (0-255) back to text; invalid UTF-8 becomes U+FFFD."""
    return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


SIZES = {  # name -> (n_layer, n_head, n_embd); CPU ms per step of 16 x 64 bytes, one thread (bench/bench_gpt.py)
    "tiny (2 x 64, ~20 ms/step)": (2, 4, 64),
    "small (2 x 96, ~30 ms/step)": (2, 4, 96),
    "medium (3 x 128, ~65 ms/step)": (3, 4, 128),
}
DEFAULT_SIZE = "small (2 x 96, ~30 ms/step)"


@dataclass(frozen=True)
class MixtureRunConfig:
    """One training run of the tiny GPT on a mixture. Uploads enter as (name, sha256) so the run id changes
    with their content; their text reaches the run through `train_mixture`'s `uploads` argument."""

    domains: tuple[str, ...] = corpora.CLEAN_DOMAINS
    weights: tuple[float, ...] = (1.0, 1.0, 1.0)  # relative; normalised at run time
    steps: int = 1000  # ~40 s on an idle 2-core CPU: long enough for the per-domain curves to separate
    batch_size: int = 16
    block_size: int = 64  # 64 bytes of context: a line or two
    size: str = DEFAULT_SIZE
    lr: float = 3e-3  # small models tolerate (and need) a high learning rate
    warmup: int = 30
    eval_every: int = 50
    sample_every: int = 250
    quality_filter: bool = False
    repeat_domain: str = ""  # '' = none; else this domain's training text is cut to repeat_kb
    repeat_kb: int = 4
    uploads: tuple[tuple[str, str], ...] = ()  # (domain name, sha256 of its text)
    seed: int = 0

    def __post_init__(self):
        if not self.domains:
            raise ConfigError("Pick at least one domain to train on.")
        if len(self.weights) != len(self.domains):
            raise ConfigError("Give one weight per domain.")
        normalise_weights(list(self.weights))  # raises with a message
        training.check_between("Steps", self.steps, 1, 20000)
        training.check_between("Batch size", self.batch_size, 1, 512)
        if not 8 <= self.block_size <= 1024:
            raise ConfigError("Context length must be between 8 and 1024 bytes.")
        if self.size not in SIZES:
            raise ConfigError(f"Model size must be one of: {', '.join(SIZES)}.")
        training.check_lr(self.lr, "try 3e-3", high=math.inf)
        if self.eval_every < 1 or self.sample_every < 1:
            raise ConfigError("Evaluate and sample at least every step (the value must be 1 or more).")
        if self.repeat_domain and self.repeat_domain not in self.domains:
            raise ConfigError(f"The repeated domain '{self.repeat_domain}' is not in the mixture.")
        if self.repeat_domain and self.repeat_kb < 1:
            raise ConfigError("The repeated domain needs at least 1 KB of text.")

    def gpt_config(self) -> GPTConfig:
        """The byte-level GPT for this run: vocabulary 256, block_size bytes of context, depth and width from SIZES."""
        n_layer, n_head, n_embd = SIZES[self.size]
        return GPTConfig(vocab_size=256, block_size=self.block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd)


@dataclass
class DomainData:
    """One domain's train and validation byte streams (1-D tensors of byte ids) and how they were made."""

    name: str
    train: torch.Tensor  # (N_train,) byte ids, documents joined by blank lines
    val: torch.Tensor  # (N_val,) byte ids of the held-out documents
    train_docs: int
    filter_stats: FilterStats | None = None
    repeated_to_kb: int = 0
    prompts: list[str] = field(default_factory=list)  # starts of held-out documents, to sample from


def _join(docs: list[str]) -> torch.Tensor:
    return encode("\n\n".join(docs) + "\n\n")


def prepare_domains(cfg: MixtureRunConfig, uploads: dict[str, list[str]] | None = None) -> dict[str, DomainData]:
    """Per-domain train / validation byte streams. Validation is always the *filtered* held-out text (the
    text we care about), so runs with and without the filter are scored on the same data."""
    uploads = uploads or {}
    out = {}
    for name in cfg.domains:
        docs = uploads[name] if name in uploads else corpora.builtin_documents(name)
        train_docs, val_docs = corpora.split(docs)
        clean_val, _ = quality_filter(val_docs)
        val_docs = clean_val or val_docs
        stats = None
        if cfg.quality_filter:
            filtered, stats = quality_filter(train_docs)
            train_docs = filtered or train_docs
        train = _join(train_docs)
        if name == cfg.repeat_domain:
            train = train[: cfg.repeat_kb * 1000]
        val = _join(val_docs)
        need = cfg.block_size + 1
        if len(train) < need or len(val) < need:
            raise ConfigError(f"Domain '{name}' has too little text ({len(train)} train / {len(val)} validation "
                             f"bytes) for a context of {cfg.block_size}: add text or shorten the context.")
        out[name] = DomainData(name, train, val, len(train_docs), stats,
                               cfg.repeat_kb if name == cfg.repeat_domain else 0,
                               [d[:24] for d in val_docs[:3]])
    return out


def _windows(stream: torch.Tensor, starts: torch.Tensor, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = starts[:, None] + torch.arange(T + 1)[None, :]  # (B, T+1)
    chunk = stream[idx]
    return chunk[:, :-1], chunk[:, 1:]  # inputs (B, T), labels = inputs shifted by one (B, T)


def get_batch(data: dict[str, DomainData], names: list[str], weights: list[float], B: int, T: int,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A mixed batch: each row's domain drawn by weight, then a random window of that domain's training text.
    Returns x (B, T), y (B, T), domain index per row (B,)."""
    dom = sample_domains(weights, B, gen)  # (B,)
    xs, ys = [], []
    for i in dom.tolist():
        stream = data[names[i]].train
        start = torch.randint(0, len(stream) - T - 1, (1,), generator=gen)
        x, y = _windows(stream, start, T)
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys), dom


def fixed_windows(stream: torch.Tensor, n: int, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n evenly spaced windows of a stream (the same every evaluation, so curves are comparable)."""
    last = len(stream) - T - 1
    starts = torch.linspace(0, last, min(n, last + 1)).long()
    return _windows(stream, starts, T)


@torch.no_grad()
def evaluate(model: GPT, windows: dict[str, tuple[torch.Tensor, torch.Tensor]], device: str) -> dict[str, float]:
    """Mean next-byte loss (nats) per named set of windows."""
    model.eval()
    out = {}
    for key, (x, y) in windows.items():
        out[key] = model.token_losses(x.to(device), y.to(device)).mean().item()
    model.train()
    return out


def warmup_steps(cfg: MixtureRunConfig) -> int:
    """Warm-up length in steps: cfg.warmup, but at most a fifth of the run (at least 1)."""
    return min(cfg.warmup, max(cfg.steps // 5, 1))  # short runs warm up for their first fifth


def upload_entry(name: str, docs: list[str]) -> tuple[str, str]:
    """(name, content hash) of an uploaded domain for MixtureRunConfig: 16 hex digits of the documents' sha256."""
    return name, hashlib.sha256("\x00".join(docs).encode()).hexdigest()[:16]


def train_mixture(ctx, uploads: dict[str, list[str]] | None = None, eval_windows: int = 16,
                  sample_bytes: int = 80) -> dict:
    """The background run: train a fresh GPT on the mixture, logging per-domain validation loss.

    Metrics per step: loss, lr, tokens_per_s; every eval_every steps val_<domain> and train_<domain> (the
    same fixed windows each time) and epochs_<domain>. Every sample_every steps a sample per domain as a note.
    """
    device = settings.device_info().device
    with _gpt_threads(device):
        return _train(ctx, uploads, eval_windows, sample_bytes, device)


@contextmanager
def _gpt_threads(device: str):
    """On a CPU, train this GPT on one thread (LLMLAB_GPT_THREADS): its matrices are tiny, and a second CPU thread
    costs more in synchronisation than it saves (measured: equal speed on an idle 2-core machine, many times
    slower on a busy one). set_num_threads is per thread here, so only this worker changes; restored afterwards
    because the pool reuses its threads."""
    if device != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("LLMLAB_GPT_THREADS", "1")))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _train(ctx, uploads, eval_windows: int, sample_bytes: int, device: str) -> dict:
    cfg: MixtureRunConfig = ctx.config
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    ctx.note("Preparing the text domains (the first run reads the standard library: a few seconds)…")
    data = prepare_domains(cfg, uploads)
    names = list(cfg.domains)
    weights, _ = normalise_weights(list(cfg.weights))
    gcfg = cfg.gpt_config()
    model = GPT(gcfg).to(device)
    T, B = cfg.block_size, cfg.batch_size
    windows = {}
    for n in names:
        windows[f"val_{n}"] = fixed_windows(data[n].val, eval_windows, T)
        windows[f"train_{n}"] = fixed_windows(data[n].train, eval_windows, T)
    for n in names:
        d = data[n]
        extra = ""
        if d.filter_stats:
            s = d.filter_stats
            extra = (f"; quality filter removed {s.removed_fraction:.0%} of its bytes ({s.duplicates} duplicates, "
                     f"{s.too_short} short, {s.repetitive} repetitive, {s.symbols} symbol-heavy documents)")
        if d.repeated_to_kb:
            extra += f"; cut to {d.repeated_to_kb} KB to be repeated"
        ctx.note(f"{n}: {len(d.train) / 1000:.0f} KB train, {len(d.val) / 1000:.0f} KB validation{extra}")
    ctx.note(f"model: {model.num_parameters():,} parameters ({gcfg.n_layer} layers x {gcfg.n_embd} wide), "
             f"byte-level, context {T}, on {device}")
    ctx.set_total(cfg.steps)
    drawn = {n: 0 for n in names}
    samples = []

    def batches():
        while True:
            yield get_batch(data, names, weights, B, T, gen)

    def loss_fn(batch) -> training.StepOutput:
        x, y, dom = batch
        _, loss = model(x.to(device), y.to(device))  # mean next-byte cross-entropy
        for i in dom.tolist():
            drawn[names[i]] += T
        return training.StepOutput(loss, tokens=B * T, flops=flops_per_token(gcfg, T) * B * T)

    def evaluate_step(step: int) -> dict:  # the same fixed windows each time, and epochs read so far per domain
        return {**evaluate(model, windows, device), **{f"epochs_{n}": drawn[n] / len(data[n].train)
                                                               for n in names}}

    def sample(step: int, row: dict) -> None:
        if step % cfg.sample_every == 0 or step == cfg.steps:
            for i, n in enumerate(names):
                text = sample_text(model, data[n].prompts[0] if data[n].prompts else "\n", sample_bytes, device,
                                   seed=cfg.seed * 1_000_003 + step * 101 + i)
                samples.append({"step": step, "domain": n, "text": text})
                ctx.note(f"step {step} · {n}: {text!r}")

    model.train()
    loop = training.LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup=warmup_steps(cfg), weight_decay=0.1,
                                 betas=(0.9, 0.95), eval_every=cfg.eval_every, eval_at_start=True, rate_every=10,
                                 loss_name="loss")
    fit = training.fit(ctx, model.parameters(), batches(), loss_fn, loop, evaluate=evaluate_step, on_step=sample,
                       device=device)
    loss_val, last_eval = fit.final_loss, fit.last_eval
    ctx.save_json("samples.json", samples)
    return {"final_loss": loss_val, **last_eval, "params": model.num_parameters(),
            "flops_per_token": flops_per_token(gcfg, T), "achieved_gflops": fit.achieved_gflops}


OVERFIT_DOMAIN = "prose"  # the domain the lessons benchmark repeats (the page's "Repeat a small domain" knob)


def overfitting_verdict(metrics: list[dict], domain: str):
    """Does the repeated domain overfit in this run? Its train/validation windows at every evaluation point,
    judged by labs.runs.lessons.overfitting (claim C3)."""
    if not domain:
        return lessons.not_measured("C3", "this run repeats no domain: pick one under 'Repeat a small domain' so it "
                                          "is read for many epochs")
    pts = [m for m in metrics if f"val_{domain}" in m and f"train_{domain}" in m]
    return lessons.overfitting([int(m["step"]) for m in pts], [m[f"train_{domain}"] for m in pts],
                               [m[f"val_{domain}"] for m in pts])


def sample_text(model: GPT, prompt: str, n: int, device: str, seed: int = 0, temperature: float = 0.8) -> str:
    """The prompt followed by n sampled bytes (top-k 40), decoded; seeded on CPU, unseeded on other devices."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    idx = encode(prompt)[None, :].to(device)  # (1, T) the prompt's byte ids
    was_training = model.training
    model.eval()
    if device != "cpu":  # torch.multinomial needs a generator on the same device
        gen = None
    out = model.generate(idx, n, temperature=temperature, top_k=40, generator=gen)
    model.train(was_training)
    return decode(out[0].tolist())


def bits(nats: float) -> float:
    """Loss in bits per byte (nats / ln 2): comparable with a compressor's output size."""
    return nats / math.log(2)


results.register(MixtureRunConfig, results.read_mixture)
