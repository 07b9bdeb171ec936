"""Cost measured on this machine: wall time and peak memory vs sequence length, prefill and per-token decode.

Prefill runs each variant's whole-sequence form (softmax: the naive [T, T] form; the rest: chunked).
Decode times one new token given a context of T tokens: softmax reads a KV cache of T keys, a linear variant
updates its fixed-size state. A straight line on log-log axes has slope = the exponent: ≈2 for softmax
prefill, ≈1 for the linear forms; ≈1 for softmax decode and ≈0 for a recurrent state.

Peak memory: CUDA's allocator statistics on a GPU; on Linux CPUs the process's resident-set high-water mark
(reset before each measurement via /proc/self/clear_refs), so other work in the same process adds noise.
"""
from __future__ import annotations

import gc
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from labs.attention import delta, linear, softmax
from labs.attention.mixers import VARIANTS
from labs.core import settings
from labs.core.errors import ConfigError
from labs.runs import lessons, results


@dataclass(frozen=True)
class CostConfig:
    """What the cost page times: each variant's prefill and one decode step at lengths min_len, 2·min_len, …
    max_len (tokens), with `heads` heads of width `head_dim`; `repeats` timings per point (the median counts)."""
    variants: tuple[str, ...] = ("softmax", "sliding_window", "linear", "gated_deltanet", "kda")
    max_len: int = 8192  # 256 → max_len, doubling. The slope is fitted on the 3 longest (2048–8192): there the
    # T×T scores (32 MB and up at 2 × 64) have left the CPU caches for good, so the time follows the work; from 1024 to
    # 2048 softmax jumps ~10× as the scores fall out of cache (measured idle: slope 2.74 over 1024–4096, 2.0 over
    # 2048–8192)
    min_len: int = 256
    heads: int = 2
    head_dim: int = 64
    window: int = 256
    power: int = 2
    chunk_size: int = 64
    repeats: int = 3
    budget_s: float = 60.0  # stop measuring a variant's longer lengths once this is spent
    memory_cap_gib: float = 2.0  # refuse a point whose estimated memory exceeds this
    seed: int = 0

    def __post_init__(self):
        for v in self.variants:
            if v not in VARIANTS:
                raise ConfigError(f"Unknown variant '{v}'. Choose from: {', '.join(VARIANTS)}.")
        if not self.variants:
            raise ConfigError("Pick at least one variant to measure.")
        if self.max_len > 16384:
            raise ConfigError(f"{self.max_len} tokens is beyond this lab's cap of 16384 on a CPU "
                             "(the softmax score matrix alone would need "
                             f"{fmt_bytes(estimate_bytes('softmax', self.max_len, self.heads, self.head_dim))}).")
        if not 16 <= self.min_len <= self.max_len:
            raise ConfigError("Lengths must satisfy 16 ≤ shortest ≤ longest.")
        if self.power < 2 or self.power % 2:
            raise ConfigError("Power attention needs an even degree p ≥ 2.")
        if self.head_dim > 128 or self.heads > 16:
            raise ConfigError("Keep heads ≤ 16 and head dim ≤ 128 on this machine.")
        if self.power > 2 and "power" in self.variants and self.head_dim > 32:
            raise ConfigError(f"Power attention with p={self.power} and head dim {self.head_dim} has "
                             f"{linear.power_state_dim(self.head_dim, self.power):,} features per head — too big "
                             "to time here. Use p=2 or head dim ≤ 32.")

    @property
    def lengths(self) -> list[int]:
        """The sequence lengths measured, in tokens: min_len doubling up to max_len."""
        out, T = [], self.min_len
        while T <= self.max_len:
            out.append(T)
            T *= 2
        return out


def estimate_bytes(variant: str, T: int, heads: int, head_dim: int, chunk: int = 64, window: int = 256,
                   power: int = 2) -> float:
    """Rough peak working memory (float32) of one prefill — the largest intermediates, a few copies each."""
    H, K, f = heads, head_dim, 4
    io = 4 * T * H * K * f
    if variant == "softmax":
        return io + 3 * H * T * T * f
    if variant == "sliding_window":
        return io + 3 * H * T * 2 * window * f
    n = -(-T // chunk)
    if variant == "linear":
        return io + 3 * H * T * chunk * f + 3 * n * H * K * K * f
    if variant == "power":
        E = linear.power_state_dim(K, power)
        return io + 2 * T * H * E * f + 3 * n * H * E * K * f + 3 * H * T * chunk * f
    width = K if variant == "kda" else 1
    return io + 3 * H * T * chunk * width * f + 4 * H * T * K * f


def fmt_bytes(b: float) -> str:
    """A byte count in words: '1.5 GiB', '12.0 KiB', '512 B'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= size:
            return f"{b / size:.1f} {unit}"
    return f"{b:.0f} B"


def _inputs(T: int, config: CostConfig, device: str, variant: str):
    g = torch.Generator(device="cpu").manual_seed(config.seed)
    H, K = config.heads, config.head_dim
    q, k, v = (torch.randn(1, T, H, K, generator=g).to(device) for _ in range(3))
    extra = {}
    if variant in ("deltanet", "gated_deltanet", "kda"):
        k = torch.nn.functional.normalize(k, dim=-1)
        extra["beta"] = torch.rand(1, T, H, generator=g).to(device)
        if variant == "gated_deltanet":
            extra["g"] = -torch.rand(1, T, H, generator=g).to(device) * 0.1
        elif variant == "kda":
            extra["g"] = -torch.rand(1, T, H, K, generator=g).to(device) * 0.1
    if variant == "linear":
        q, k = linear.elu_feature_map(q), linear.elu_feature_map(k)
    if variant == "power":
        q, k = q / K**0.5, k / K**0.5
    return q, k, v, extra


def prefill_fn(variant: str, config: CostConfig):
    """The whole-sequence form each variant would use to read a prompt."""
    if variant == "softmax":
        return lambda q, k, v, e: softmax.softmax_attention_parallel(q, k, v)
    if variant == "sliding_window":
        return lambda q, k, v, e: softmax.sliding_window_chunked(q, k, v, config.window)
    if variant == "linear":
        return lambda q, k, v, e: linear.linear_attention_chunked(q, k, v, chunk_size=config.chunk_size)
    if variant == "power":
        return lambda q, k, v, e: linear.power_attention_chunked(q, k, v, config.power, chunk_size=config.chunk_size)
    return lambda q, k, v, e: delta.delta_rule_chunked(q, k, v, e["beta"], e.get("g"), chunk_size=config.chunk_size)[0]


def decode_fn(variant: str, config: CostConfig, T: int, device: str):
    """One new token after a context of T: returns a closure doing exactly the work of that step."""
    H, K = config.heads, config.head_dim
    q, k, v, e = _inputs(1, config, device, variant)
    if variant in ("softmax", "sliding_window"):
        S = T if variant == "softmax" else min(T, config.window)
        k_cache, v_cache = torch.randn(1, S, H, K, device=device), torch.randn(1, S, H, K, device=device)

        def step():
            kc, vc = torch.cat([k_cache, k], 1), torch.cat([v_cache, v], 1)   # append to the cache (a copy, as naive code does)
            w = (torch.einsum("bhk,bshk->bhs", q[:, 0], kc) / K**0.5).softmax(-1)
            return torch.einsum("bhs,bshv->bhv", w, vc)
        return step
    if variant in ("linear", "power"):
        E = K if variant == "linear" else linear.power_state_dim(K, config.power)
        state = torch.randn(1, H, E, K, device=device)
        if variant == "linear":
            return lambda: linear.linear_attention_recurrent(q, k, v, initial_state=state)
        qf, kf = linear.sympow_embedding(q, config.power), linear.sympow_embedding(k, config.power)
        return lambda: linear.linear_attention_recurrent(qf, kf, v, initial_state=state)
    state = torch.randn(1, H, K, K, device=device)
    return lambda: delta.delta_rule_recurrent(q, k, v, e["beta"], e.get("g"), initial_state=state)


# --- peak memory ------------------------------------------------------------------------------------------------

_STATUS = Path("/proc/self/status")


def _rss_kib(field: str) -> int | None:
    try:
        m = re.search(rf"{field}:\s+(\d+)", _STATUS.read_text())
        return int(m.group(1)) if m else None
    except OSError:
        return None


class PeakMemory:
    """Context manager: .peak_bytes = extra memory at the high-water mark while the block ran (None if unknown)."""

    def __init__(self, device: str):
        self.device, self.peak_bytes = device, None

    def __enter__(self):
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS (Linux)
                self.base = _rss_kib("VmRSS")
            except OSError:
                self.base = None
        return self

    def __exit__(self, *exc):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak_bytes = float(torch.cuda.max_memory_allocated() - self.base)
        elif self.base is not None:
            hwm = _rss_kib("VmHWM")
            self.peak_bytes = float(max(hwm - self.base, 0) * 1024) if hwm is not None else None
        return False


def _time(fn, repeats: int, device: str, min_total_s: float = 0.2, max_repeats: int = 50) -> float:
    """Best wall time in seconds over at least `repeats` runs (after one warm-up), repeating fast calls until
    min_total_s has passed: the minimum filters out moments when another process had the CPU."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fn()
    sync()
    best, total, n = math.inf, 0.0, 0
    while n < repeats or (total < min_total_s and n < max_repeats):
        start = time.perf_counter()
        fn()
        sync()
        elapsed = time.perf_counter() - start
        best, total, n = min(best, elapsed), total + elapsed, n + 1
    return best


@torch.no_grad()
def measure(config: CostConfig, device: str = "cpu", on_point=None, should_stop=None) -> list[dict]:
    """Rows {variant, T, prefill_ms, decode_ms, peak_MiB, skipped} for every variant and length.

    on_point(row) is called after each measurement (the job logs it); should_stop() is checked between points.
    A point is skipped (with the reason in 'skipped') when its memory estimate exceeds the cap or the
    variant has used its time budget.
    """
    rows = []
    for variant in config.variants:
        spent, last_time = 0.0, None
        for T in config.lengths:
            if should_stop is not None and should_stop():
                return rows
            est = estimate_bytes(variant, T, config.heads, config.head_dim, config.chunk_size, config.window,
                                 config.power)
            row = {"variant": variant, "T": T, "estimate_MiB": est / 2**20, "prefill_ms": None, "decode_ms": None,
                   "peak_MiB": None, "skipped": ""}
            if est > config.memory_cap_gib * 2**30:
                row["skipped"] = (f"needs about {fmt_bytes(est)} (cap {config.memory_cap_gib:g} GiB)")
            elif last_time is not None and spent + 2.5 * last_time * (config.repeats + 1) > config.budget_s:
                row["skipped"] = f"time budget of {config.budget_s:g} s per variant used"
            else:
                t0 = time.perf_counter()
                q, k, v, e = _inputs(T, config, device, variant)
                fn = prefill_fn(variant, config)
                with PeakMemory(device) as mem:
                    fn(q, k, v, e)
                row["peak_MiB"] = None if mem.peak_bytes is None else mem.peak_bytes / 2**20
                last_time = _time(lambda: fn(q, k, v, e), config.repeats, device)
                row["prefill_ms"] = last_time * 1e3
                row["decode_ms"] = _time(decode_fn(variant, config, T, device), max(config.repeats, 5), device) * 1e3
                del q, k, v, e
                spent += time.perf_counter() - t0
            rows.append(row)
            if on_point is not None:
                on_point(row)
    return rows


def fit_slope(rows: list[dict], variant: str, key: str = "prefill_ms", tail: int = 3) -> float | None:
    """Least-squares slope of log(key) on log(T) over the `tail` longest measured lengths (the asymptotic part)."""
    pts = [(r["T"], r[key]) for r in rows if r["variant"] == variant and r.get(key)]
    pts = sorted(pts)[-tail:]
    if len(pts) < 2:
        return None
    xs, ys = [math.log(t) for t, _ in pts], [math.log(y) for _, y in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else None


def crossover(rows: list[dict], variant: str, baseline: str = "softmax", key: str = "prefill_ms") -> float | None:
    """Shortest length at which `variant` is faster than `baseline`, interpolated on log-log axes.

    None if it never is within the measured range (or one of them is missing); the shortest length if it
    already is there."""
    a = {r["T"]: r[key] for r in rows if r["variant"] == variant and r.get(key)}
    b = {r["T"]: r[key] for r in rows if r["variant"] == baseline and r.get(key)}
    Ts = sorted(set(a) & set(b))
    if not Ts:
        return None
    ratio = [math.log(a[t] / b[t]) for t in Ts]  # < 0 where variant is faster
    if ratio[0] < 0:
        return float(Ts[0])
    for (t0, r0), (t1, r1) in zip(zip(Ts, ratio), zip(Ts[1:], ratio[1:])):
        if r0 >= 0 > r1:
            frac = r0 / (r0 - r1)
            return float(math.exp(math.log(t0) + frac * (math.log(t1) - math.log(t0))))
    return None


def slopes_verdict(rows: list[dict]):
    """C10 from measured rows: labs.runs.lessons.attention_slopes over softmax's and linear's prefill slopes (the 3 longest
    lengths), or 'not measured yet' when either variant was not timed."""
    missing = [v for v in ("softmax", "linear") if not any(r["variant"] == v and r.get("prefill_ms") for r in rows)]
    if missing:
        return lessons.not_measured("C10", f"{' and '.join(missing)} attention was not timed: include it in the "
                                           "variants")
    times = {v: [(r["T"], r["prefill_ms"]) for r in rows if r["variant"] == v and r.get("prefill_ms")]
             for v in ("softmax", "linear")}
    verdict = lessons.attention_slopes(fit_slope(rows, "softmax"), fit_slope(rows, "linear"), times=times)
    verdict.figures["lengths"] = [t for t, _ in times["softmax"]]
    return verdict


def run_job(ctx) -> dict:
    """labs.runs.jobs step function: one logged row per (variant, length)."""
    config: CostConfig = ctx.config
    device = settings.device_info().device
    ctx.set_total(len(config.variants) * len(config.lengths))
    counter = {"i": 0}

    def on_point(row):
        counter["i"] += 1
        ctx.log(step=counter["i"], **{k: v for k, v in row.items() if v is not None})

    rows = measure(config, device, on_point=on_point, should_stop=ctx.should_stop)
    ctx.check_stop()
    summary = {"device": settings.device_info().name, "rows": rows,
               "prefill_slope": {v: fit_slope(rows, v) for v in config.variants},
               "decode_slope": {v: fit_slope(rows, v, "decode_ms") for v in config.variants},
               "crossover": {v: crossover(rows, v) for v in config.variants if v != "softmax"}}
    ctx.save_json("cost.json", summary)
    return summary


results.register(CostConfig, results.attention_reader("cost", "cost.json"))
