"""Model benchmarks, side by side in one run; prints JSON (and writes bench/results/models.json).

    .venv/bin/python -m bench.bench_models [--quick] [--tokens 64] [--repeats 3]

1. load: first GGUF load (dequantising in transformers) vs the cached safetensors load (skipped by --quick).
2. decode: one stream — plain `model.generate` in float32 (the baseline) next to our engine with each decode
   variant, and each variant's quality: perplexity on standard-library docstrings and greedy agreement with
   float32 (labs.quality). A variant may be the default only within +2 % perplexity.
3. concurrency: aggregate tokens/s of 1, 4 and 16 concurrent streams through the engine (default variant), and
   whether every stream's greedy answer in the batch equals its answer alone.
4. transformers' own continuous batching (`model.generate_batch`, paged KV cache) on the same 16 prompts.
Measure with nothing else heavy running: two cores are shared by everything.
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch

from bench import save
from labs import generation, hardware, models, quality
from labs.generation import GenerationConfig

PROMPT = [{"role": "user", "content": "Write a short paragraph about why the ocean is salty."}]
PROMPTS = ["Write a short paragraph about why the ocean is salty.", "What is the capital of France?",
           "Give me three tips for studying.", "Explain photosynthesis simply.", "What is a prime number?",
           "Describe a cat in two sentences.", "Why do we sleep?", "How does a bicycle stay upright?"]
KEY = models.DEFAULT_CHAT_MODEL


def _median(xs):
    return round(statistics.median(xs), 4)


def bench_load(repeats: int) -> dict:
    from transformers import AutoModelForCausalLM

    gguf = models.source_path(KEY)
    t0 = time.perf_counter()
    AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    first = time.perf_counter() - t0
    models.ensure_cached(KEY)
    cached = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        models.load_model(KEY, device="cpu", dtype=torch.float32)
        cached.append(time.perf_counter() - t0)
    return {"gguf_first_load_s": round(first, 2), "cached_load_s": _median(cached),
            "speedup": round(first / statistics.median(cached), 1), "goal_cached_s": 2.0}


def _ids(lm, prompt, tokens):
    return generation.encode_prompt(lm, [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt,
                                    tokens)


def time_stream(lm, model, tokens: int) -> tuple[float, float]:
    """(time to first token, decode tokens/s after it) of one greedy stream through the engine."""
    cfg = GenerationConfig(max_new_tokens=tokens, temperature=0, repetition_penalty=1.0)
    t0, first, n = time.perf_counter(), None, 0
    for n, _ in enumerate(generation.stream_tokens(lm, _ids(lm, PROMPT, tokens), cfg, model=model, ignore_eos=True),
                          start=1):
        if first is None:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return first, (n - 1) / max(total - first, 1e-9)


def bench_decode(lm, tokens: int, repeats: int, variants: tuple[str, ...], ppl_tokens: int) -> dict:
    ids = torch.tensor([_ids(lm, PROMPT, tokens)])
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                min_new_tokens=tokens, do_sample=False)
        runs.append((out.shape[1] - ids.shape[1]) / (time.perf_counter() - t0))
    results = {"hf_generate_float32": {"tokens_per_s": _median(runs)}}
    text = quality.reference_text()
    base_ppl = quality.perplexity(lm.tokenizer, lm.model, text, ppl_tokens)
    _, reference = quality.greedy_agreement(lm, lm.model)
    for name in variants:
        model = models.decode_variant(lm, name)
        time_stream(lm, model, 4)  # warm-up
        ttfts, tps = zip(*(time_stream(lm, model, tokens) for _ in range(repeats)))
        ppl = quality.perplexity(lm.tokenizer, model, text, ppl_tokens)
        agree, _ = quality.greedy_agreement(lm, model, reference)
        results[f"engine_{name}"] = {"ttft_s": _median(ttfts), "tokens_per_s": _median(tps),
                                     "perplexity": round(ppl, 3), "ppl_ratio": round(ppl / base_ppl, 4),
                                     "greedy_agreement_vs_float32": agree,
                                     "passes_gate": ppl / base_ppl <= quality.GATE}
    base = results["hf_generate_float32"]["tokens_per_s"]
    for row in results.values():
        row["speedup_vs_hf_float32"] = round(row["tokens_per_s"] / base, 2)
    return results


def bench_concurrency(lm, tokens: int, counts=(1, 4, 16)) -> dict:
    model = lm.inference_model
    cfg = GenerationConfig(max_new_tokens=tokens, temperature=0, repetition_penalty=1.0)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(max(counts))]
    alone = {p: list(generation.stream_tokens(lm, _ids(lm, p, tokens), cfg, model=model, ignore_eos=True))
             for p in dict.fromkeys(prompts)}
    out = {"variant": lm.decode}
    for n in counts:
        results, firsts = [None] * n, [None] * n

        def one(i, t0):
            tokens_i = []
            for tok in generation.stream_tokens(lm, _ids(lm, prompts[i], tokens), cfg, model=model, ignore_eos=True):
                if not tokens_i:
                    firsts[i] = time.perf_counter() - t0
                tokens_i.append(tok)
            results[i] = tokens_i

        t0 = time.perf_counter()
        threads = [threading.Thread(target=one, args=(i, t0)) for i in range(n)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        elapsed = time.perf_counter() - t0
        same = sum(results[i] == alone[prompts[i]] for i in range(n))
        out[f"{n}_streams"] = {"aggregate_tokens_per_s": round(sum(map(len, results)) / elapsed, 2),
                               "wall_s": round(elapsed, 2), "ttft_max_s": round(max(firsts), 3),
                               "greedy_same_as_alone": f"{same}/{n}"}
    one_rate = out["1_streams"]["aggregate_tokens_per_s"]
    for n in counts[1:]:
        out[f"ratio_{n}_vs_1"] = round(out[f"{n}_streams"]["aggregate_tokens_per_s"] / one_rate, 2)
    return out


def bench_hf_continuous_batching(lm, tokens: int, n: int = 16) -> dict:
    """transformers' continuous batching (paged KV cache) on the same prompts, float32, greedy."""
    from transformers import GenerationConfig as HFConfig

    inputs = [_ids(lm, PROMPTS[i % len(PROMPTS)], tokens) for i in range(n)]
    config = HFConfig(max_new_tokens=tokens, do_sample=False, eos_token_id=-1, pad_token_id=0)
    try:
        t0 = time.perf_counter()
        outputs = lm.model.generate_batch(inputs, config, warmup=False)
        elapsed = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    produced = sum(len(getattr(o, "generated_tokens", []) or []) for o in outputs.values())
    return {"streams": n, "aggregate_tokens_per_s": round(produced / elapsed, 2), "wall_s": round(elapsed, 2),
            "tokens": produced}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="under 3 minutes: no load timing, fewer tokens")
    parser.add_argument("--tokens", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    tokens = args.tokens or (32 if args.quick else 64)
    repeats = args.repeats or (1 if args.quick else 3)
    variants = ("float32", "bfloat16", "int8_dynamic") if args.quick else models.DECODE_VARIANTS
    report = {"machine": {"threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "bandwidth_gbs": round(hardware.memory_bandwidth_gbs(), 2)},
              "new_tokens": tokens, "quick": args.quick}
    if not args.quick:
        report["load"] = bench_load(repeats)
    lm = models.load_model(KEY, device="cpu", dtype=torch.float32)
    report["decode"] = bench_decode(lm, tokens, repeats, variants, 512 if args.quick else 2048)
    report["concurrency"] = bench_concurrency(lm, tokens)
    report["hf_continuous_batching_16"] = bench_hf_continuous_batching(lm, tokens)
    gate = models.decode_gate(lm) or {}
    report["default_variant"] = lm.decode
    report["default_ppl_ratio"] = gate.get("ppl_ratio", 1.0) if lm.decode != "float32" else 1.0
    report["ratio_16_vs_1"] = report["concurrency"]["ratio_16_vs_1"]
    engine_default = report["decode"].get(f"engine_{lm.decode}", {})
    report["default_single_stream_speedup_vs_hf_float32"] = engine_default.get("speedup_vs_hf_float32")
    save("models_quick" if args.quick else "models", report)
    return report


if __name__ == "__main__":
    main()
