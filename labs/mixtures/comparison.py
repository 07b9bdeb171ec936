"""Quality beats quantity at equal compute (claim M4): the same tiny GPT, steps and seed on the noisy domain, with and
without the quality filter, both scored on the same clean held-out text."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch

from labs.core import settings
from labs.core.errors import ConfigError
from labs.data import corpora
from labs.mixtures.filtering import FilterStats, filter_vs_labels
from labs.mixtures.gpt import GPT, flops_per_token
from labs.mixtures.pretrain import (DEFAULT_SIZE, MixtureRunConfig, _gpt_threads, evaluate, fixed_windows, get_batch,
                                    prepare_domains, warmup_steps)
from labs.runs import lessons, results
from labs.training import loop as training


# ---------------------------------------------------------------------------------------------------------------
# Quality beats quantity at equal compute (claim M4): the same GPT, steps and seed on the noisy domain, with and
# without the filter, both scored on the same clean held-out text
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityComparisonConfig:
    """Two tiny GPTs trained side by side for the same steps from the same initial weights and seed: one on all of
    a noisy domain, one on what the quality filter keeps of it. Defaults: ~45 s on a 2-core CPU (measured while other
    jobs kept it busy; both models train on one thread)."""

    domain: str = corpora.NOISY_DOMAIN  # a built-in domain; 'web' is the one made noisy on purpose
    steps: int = 600  # the filtered run reads its ~200 KB of clean text ~3 times: inside the ~4-epoch sweet spot
    batch_size: int = 16
    block_size: int = 64
    size: str = DEFAULT_SIZE
    lr: float = 3e-3
    warmup: int = 30
    eval_every: int = 50
    eval_windows: int = 64  # 64 windows x 64 bytes = 4 KB of clean held-out text per evaluation
    seed: int = 0

    def __post_init__(self):
        if self.domain not in corpora.BUILTIN_DOMAINS:
            raise ConfigError(f"Pick a built-in domain ({', '.join(corpora.BUILTIN_DOMAINS)}), not '{self.domain}'.")
        if not 1 <= self.eval_windows <= 1024:
            raise ConfigError("Evaluate on 1 to 1024 windows of held-out text.")
        self.run_config(True)  # the step, size, lr and eval checks, with their messages

    def run_config(self, filtered: bool) -> MixtureRunConfig:
        """One arm of the comparison as a one-domain mixture run (filtered or not)."""
        return MixtureRunConfig(domains=(self.domain,), weights=(1.0,), steps=self.steps, batch_size=self.batch_size,
                                block_size=self.block_size, size=self.size, lr=self.lr, warmup=self.warmup,
                                eval_every=self.eval_every, sample_every=self.steps, quality_filter=filtered,
                                seed=self.seed)


QUALITY_ARMS = ("unfiltered", "filtered")


def run_quality_comparison(ctx) -> dict:
    """The background run of claim M4. Metrics: loss_<arm> every step (its own training batches) and, every
    eval_every steps, val_<arm> (nats per byte on the same clean held-out windows) for arm in QUALITY_ARMS.
    Returns both final clean-validation losses, the filter's stats and label check, steps and seconds."""
    device = settings.device_info().device
    with _gpt_threads(device):
        return _compare(ctx, ctx.config, device)


def _compare(ctx, cfg: QualityComparisonConfig, device: str) -> dict:
    t0 = time.perf_counter()
    ctx.note(f"Preparing the '{cfg.domain}' domain twice: as scraped, and after the quality filter…")
    data = {arm: prepare_domains(cfg.run_config(arm == "filtered"))[cfg.domain] for arm in QUALITY_ARMS}
    val = data["filtered"].val  # prepare_domains filters the held-out text in both arms: the same clean bytes
    T, B = cfg.block_size, cfg.batch_size
    windows = {"val": fixed_windows(val, cfg.eval_windows, T)}
    gcfg = cfg.run_config(False).gpt_config()
    models, gens = {}, {}
    for arm in QUALITY_ARMS:  # the same initial weights and the same batch order (by position) in both arms
        torch.manual_seed(cfg.seed)
        models[arm] = GPT(gcfg).to(device).train()
        gens[arm] = torch.Generator().manual_seed(cfg.seed)
    stats = data["filtered"].filter_stats
    ctx.note(f"{cfg.domain}: {len(data['unfiltered'].train) / 1000:.0f} KB as scraped, "
             f"{len(data['filtered'].train) / 1000:.0f} KB after the filter (removed {stats.removed_fraction:.0%}); "
             f"{len(val) / 1000:.0f} KB of clean held-out text scores both")
    ctx.set_total(cfg.steps)
    names = [cfg.domain]

    def batches():
        while True:
            yield {arm: get_batch({cfg.domain: data[arm]}, names, [1.0], B, T, gens[arm]) for arm in QUALITY_ARMS}

    def loss_fn(batch) -> training.StepOutput:  # two independent losses: their sum's gradient is each model's own
        losses = {arm: models[arm](x.to(device), y.to(device))[1] for arm, (x, y, _) in batch.items()}
        return training.StepOutput(sum(losses.values()), tokens=2 * B * T,
                                   flops=2 * flops_per_token(gcfg, T) * B * T,
                                   metrics={f"loss_{arm}": float(v.detach()) for arm, v in losses.items()})

    def evaluate_step(step: int) -> dict:
        return {f"val_{arm}": evaluate(models[arm], windows, device)["val"] for arm in QUALITY_ARMS}

    # One param group per model, each clipped on its own: exactly two separate AdamW runs, stepped together so
    # both curves move live and share the x axis.
    loop = training.LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup=warmup_steps(cfg.run_config(False)),
                                 weight_decay=0.1, betas=(0.9, 0.95), eval_every=cfg.eval_every, eval_at_start=True,
                                 rate_every=10, clip_per_group=True, loss_name=None)
    fit = training.fit(ctx, [{"params": list(models[arm].parameters())} for arm in QUALITY_ARMS], batches(),
                       loss_fn, loop, evaluate=evaluate_step, device=device)
    _, labels = (filter_vs_labels(list(corpora.web_pages())) if cfg.domain == corpora.NOISY_DOMAIN else (None, {}))
    return {**fit.last_eval, "steps": fit.steps, "seconds": time.perf_counter() - t0,
            "train_seconds": fit.train_seconds, "filter": asdict(stats),
            "bytes": {arm: len(data[arm].train) for arm in QUALITY_ARMS}, "clean_val_bytes": len(val),
            "params": models["filtered"].num_parameters(), **labels}


@dataclass(frozen=True)
class QualityComparisonResult:
    """A finished M4 run: both clean-validation losses (nats per byte), the filter's counts, and its cost."""

    val_unfiltered: float
    val_filtered: float
    steps: int
    seconds: float
    filter: FilterStats | None
    precision: float | None = None  # of the filter against the web domain's labels (None for other domains)
    recall: float | None = None
    train_bytes: dict = field(default_factory=dict)  # {arm: training bytes}


def quality_result(run) -> QualityComparisonResult | None:
    """The typed result of a finished run_quality_comparison job (None: no run, still active, or no losses)."""
    if run is None or run.active:
        return None
    return _quality_from_summary(run.summary or {})


def _quality_from_summary(s: dict) -> QualityComparisonResult | None:
    if "val_filtered" not in s or "val_unfiltered" not in s:
        return None
    stats = FilterStats(**s["filter"]) if isinstance(s.get("filter"), dict) else None
    return QualityComparisonResult(float(s["val_unfiltered"]), float(s["val_filtered"]), int(s.get("steps", 0)),
                                   float(s.get("seconds", math.nan)), stats, s.get("precision"), s.get("recall"),
                                   dict(s.get("bytes", {})))


def quality_verdict(result: QualityComparisonResult | dict | None):
    """Claim M4 from a comparison's result (or its summary dict): labs.runs.lessons.quality_filter_helps, with the
    steps, seconds and the filter's removed share and precision / recall as further figures."""
    if isinstance(result, dict):
        result = _quality_from_summary(result)
    if result is None:
        return lessons.not_measured("M4", "no finished comparison yet: press 'Compare with and without the filter'")
    v = lessons.quality_filter_helps(result.val_filtered, result.val_unfiltered)
    v.figures.update(steps=result.steps, seconds=round(result.seconds, 1))
    if result.filter is not None:
        v.figures["removed_bytes_share"] = round(result.filter.removed_fraction, 3)
    if result.precision is not None:
        v.figures.update(filter_precision=round(result.precision, 3), filter_recall=round(result.recall, 3))
    return v


results.register(QualityComparisonConfig, quality_result)
