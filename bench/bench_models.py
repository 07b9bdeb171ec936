"""Model benchmarks, side by side in one run; prints JSON (and writes bench/results/models.json).

    .venv/bin/python -m bench.bench_models [--tokens 128] [--repeats 3]

1. load: first GGUF load (dequantising in transformers) vs the cached safetensors load.
2. decode: time to first token and decode tokens/s for SmolLM2 at N new tokens — plain `model.generate`
   in float32, our streaming loop in float32, bfloat16 and int8 (dynamic quantisation) — next to the
   memory-bandwidth bound (bytes of weights read per token / measured bandwidth).
3. concurrency: aggregate tokens/s with 4 concurrent chat requests vs one.
"""
from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

import torch

from labs import generation, hardware, models
from labs.generation import GenerationConfig

PROMPT = [{"role": "user", "content": "Write a short paragraph about why the ocean is salty."}]
KEY = models.DEFAULT_CHAT_MODEL


def _median(xs):
    return round(statistics.median(xs), 4)


def bench_load(repeats: int) -> dict:
    from transformers import AutoModelForCausalLM

    gguf = models.source_path(KEY)
    first = []
    for _ in range(1):  # 15-60 s each: once is enough to see the order of magnitude
        t0 = time.perf_counter()
        AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        first.append(time.perf_counter() - t0)
    models.ensure_cached(KEY)
    cached = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        models.load_model(KEY, device="cpu", dtype=torch.float32)
        cached.append(time.perf_counter() - t0)
    return {"gguf_first_load_s": _median(first), "cached_load_s": _median(cached),
            "speedup": round(statistics.median(first) / statistics.median(cached), 1), "goal_cached_s": 2.0}


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes read per decoded token: every weight once (int8 modules counted by their packed weights)."""
    total = 0
    seen = set()
    for module in model.modules():
        if hasattr(module, "_packed_params") and callable(getattr(module, "weight", None)):  # int8 dynamic Linear: 1 byte per weight + fp32 scale per row
            w = module.weight()
            total += w.numel() + w.shape[0] * 4
        for p in module.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                # The input embedding is a lookup (one row per token), not read in full; lm_head is.
                if isinstance(module, torch.nn.Embedding) and module is not getattr(model, "lm_head", None):
                    continue
                total += p.numel() * p.element_size()
    return total


def time_stream(lm, model, tokens: int) -> tuple[float, float, int]:
    cfg = GenerationConfig(max_new_tokens=tokens, temperature=0, repetition_penalty=1.0)
    ids = generation.encode_prompt(lm, PROMPT, tokens)
    t0 = time.perf_counter()
    first = None
    n = 0
    # min_new_tokens-like: ignore EOS by counting decode steps of our loop directly
    for n, _ in enumerate(generation.stream_tokens(lm, ids, cfg, model=model, ignore_eos=True), start=1):
        if first is None:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return first, (n - 1) / max(total - first, 1e-9), n


def bench_decode(tokens: int, repeats: int, bandwidth: float) -> dict:
    results = {}
    lm = models.load_model(KEY, device="cpu", dtype=torch.float32)
    ids = torch.tensor([generation.encode_prompt(lm, PROMPT, tokens)])
    # Plain transformers generate, float32 (the baseline).
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                min_new_tokens=tokens, do_sample=False)
        runs.append((out.shape[1] - ids.shape[1]) / (time.perf_counter() - t0))
    t0 = time.perf_counter()
    lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=1, do_sample=False)
    results["hf_generate_float32"] = {"ttft_s": round(time.perf_counter() - t0, 4), "tokens_per_s": _median(runs),
                                      "weight_mb": round(weight_bytes(lm.model) / 1e6, 1)}
    variants = {"stream_float32": lm.model, "stream_bfloat16": None, "stream_int8_dynamic": None}
    for name in variants:
        model = models.decode_variant(lm, name.removeprefix("stream_"))
        ttfts, tps = [], []
        for _ in range(repeats):
            ttft, rate, _ = time_stream(lm, model, tokens)
            ttfts.append(ttft)
            tps.append(rate)
        mb = weight_bytes(model) / 1e6
        results[name] = {"ttft_s": _median(ttfts), "tokens_per_s": _median(tps), "weight_mb": round(mb, 1),
                         "bandwidth_bound_tokens_per_s": round(bandwidth * 1e3 / mb, 1)}
    base = results["hf_generate_float32"]["tokens_per_s"]
    for name, row in results.items():
        row["speedup_vs_hf_float32"] = round(row["tokens_per_s"] / base, 2)
    return results


def bench_concurrency(tokens: int) -> dict:
    lm = models.load_model(KEY, device="cpu", dtype=torch.float32)
    model = models.decode_variant(lm, models.default_decode_variant())

    def one(results, i):
        cfg = GenerationConfig(max_new_tokens=tokens, temperature=0.7, seed=i)
        ids = generation.encode_prompt(lm, PROMPT, tokens)
        results[i] = sum(1 for _ in generation.stream_tokens(lm, ids, cfg, model=model, ignore_eos=True))

    out = {}
    for n in (1, 4):
        results = [0] * n
        threads = [threading.Thread(target=one, args=(results, i)) for i in range(n)]
        t0 = time.perf_counter()
        [t.start() for t in threads]
        [t.join() for t in threads]
        elapsed = time.perf_counter() - t0
        out[f"{n}_requests"] = {"aggregate_tokens_per_s": round(sum(results) / elapsed, 2), "wall_s": round(elapsed, 2)}
    out["ratio_4_vs_1"] = round(out["4_requests"]["aggregate_tokens_per_s"] / out["1_requests"]["aggregate_tokens_per_s"], 2)
    out["variant"] = models.default_decode_variant()
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args(argv)
    bandwidth = hardware.memory_bandwidth_gbs()
    report = {"machine": {"threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "bandwidth_gbs": round(bandwidth, 2), "matmul_gflops": round(hardware.matmul_gflops(), 1)},
              "new_tokens": args.tokens}
    if not args.skip_load:
        report["load"] = bench_load(args.repeats)
    report["decode"] = bench_decode(args.tokens, args.repeats, bandwidth)
    report["concurrency"] = bench_concurrency(min(args.tokens, 64))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "models.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
